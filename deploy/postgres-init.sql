-- The lake's catalog lives beside the Dagster instance's storage, in its own database.
CREATE DATABASE ozi_lake;

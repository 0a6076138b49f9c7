"""Ozi's evaluation set: questions.yaml, its grader (grade.py) and truth runner (truth.py)."""

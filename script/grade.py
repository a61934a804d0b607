"""`python -m script.grade`: the course's 2026 grading (`script.ab.grade`)."""

from script.ab.grade import main

if __name__ == "__main__":
    main()

from script.ope.cli import main

main()

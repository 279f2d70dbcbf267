from crmtier.cli import main

main()

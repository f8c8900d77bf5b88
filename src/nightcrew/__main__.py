from nightcrew.cli import main

raise SystemExit(main())

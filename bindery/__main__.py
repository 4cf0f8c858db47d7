from bindery.cli import main

raise SystemExit(main())

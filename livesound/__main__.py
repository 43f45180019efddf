from livesound.cli import main

raise SystemExit(main())

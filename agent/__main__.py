"""python3 -m agent"""

from agent.main import main

main()

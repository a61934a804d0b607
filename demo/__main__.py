"""`python -m demo` (`make demo`): the seed's whole experiment as one command.

world -> stack (Redis + replicas + nginx) -> day 1 (collection) -> export -> prepare -> train CORE
-> top-100 -> deploy (the running service picks it up, no restart) -> day 2 (the A/B test) ->
export -> A/B report, all in one run folder. Each step is the same command a user can run by hand;
its output goes to `<run>/logs/<step>.log`, and a failed step names itself and its log.
"""

from demo.loop import main

if __name__ == "__main__":
    main()

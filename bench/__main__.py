"""`make bench`: the figures the issues ask for (ratios and counts are stable; absolute times are noisy)."""

from bench import estimator, gateway


def main() -> None:
    gateway.run()
    print()
    print("== token estimator ==")
    estimator.main()


if __name__ == "__main__":
    main()

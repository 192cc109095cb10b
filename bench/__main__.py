"""`make bench`: the figures the issues ask for (ratios and counts are stable; absolute times are noisy)."""

import bench.aggregator as aggregator
import bench.cache as cache
import bench.estimator as estimator
import bench.gateway as gateway
import bench.report as report
import bench.utilisation as utilisation


def main() -> None:
    gateway.run()
    print()
    utilisation.run()
    print()
    cache.run()
    print()
    print("== token estimator ==")
    estimator.main()
    print()
    aggregator.run()
    print()
    report.run()


if __name__ == "__main__":
    main()

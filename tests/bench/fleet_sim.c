// SPDX-License-Identifier: MIT
/* fleet_sim: how often `dynoprof diff` over many agents flags a change, from
 * the simulated fleet of tests/unit/fleet_sim.h (the statistic diff uses:
 * host x window clusters nested in hosts unless CLUSTERS says host-window or
 * host, bootstrap-t). Run by tests/bench/fleet_sim.py.
 *
 *   fleet_sim HZ HOSTS MINUTES CHANGE TRIALS [SIGMA_HOST [CONFIDENCE [MIN_EFFECT [CLUSTERS]]]]
 *
 * prints "rate N" (the share of trials flagged as a regression). The other
 * inputs are README's ("Fleet"): 10 s windows, the endpoint at 0.25 cores per
 * host and half of its processes' CPU, 5 ms requests with CV 1, windows
 * varying by 2%. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/fleet_sim.h"

int main(int argc, char **argv)
{
	if (argc < 6) {
		fprintf(stderr, "usage: fleet_sim HZ HOSTS MINUTES CHANGE TRIALS [SIGMA_HOST "
			"[CONFIDENCE [MIN_EFFECT [nested|host-window|host]]]]\n");
		return 2;
	}
	struct fleet_model m = { .hz = atof(argv[1]), .window_s = 10, .cores = 0.25,
				 .share = 0.5, .cpu_per_req_s = 0.005, .req_cv = 1.0,
				 .sigma_window = 0.02,
				 .sigma_host = argc > 6 ? atof(argv[6]) : 0.005 };
	double minutes = atof(argv[3]);
	struct fleet_plan p = { .hosts = (unsigned)atoi(argv[2]),
				.windows = (unsigned)(minutes * 60 / m.window_s + 0.5),
				.change = atof(argv[4]),
				.confidence = argc > 7 ? atof(argv[7]) : 0.99,
				.min_effect = argc > 8 ? atof(argv[8]) : 0.01,
				.resamples = 1000,
				.clusters = argc <= 9 || !strcmp(argv[9], "nested") ? FLEET_NESTED :
					    !strcmp(argv[9], "host") ? FLEET_HOST : FLEET_HOST_WINDOW };
	if (!p.hosts || !p.windows) {
		fprintf(stderr, "fleet_sim: HOSTS and MINUTES must give at least one window\n");
		return 2;
	}
	double rate = fleet_sim__rate(&m, &p, (unsigned)atoi(argv[5]), 1);
	if (rate < 0) {
		fprintf(stderr, "fleet_sim: estimate failed\n");
		return 1;
	}
	printf("rate %.4f\n", rate);
	return 0;
}

// SPDX-License-Identifier: MIT
/* The agent.conf that `make install` puts in /etc/dynoprof loads without an
 * error and says what the documented defaults say (a shipped config the agent
 * refuses would stop `systemctl start dynoprof-agent`). Run from the
 * repository root (make unit-test). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "agent/config.h"

static void test_shipped_config_loads(void **state)
{
	(void)state;
	struct agent_config c, d;
	char err[512] = "";
	agent_config__defaults(&c);
	agent_config__defaults(&d);
	int e = agent_config__load(&c, "scripts/agent.conf", err, sizeof(err));
	if (e)
		fail_msg("scripts/agent.conf: %s", err);
	assert_string_equal(c.listen_address, d.listen_address);
	assert_int_equal(c.listen_port, d.listen_port);
	assert_int_equal(c.frequency_hz, d.frequency_hz);
	assert_string_equal(c.database, d.database);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shipped_config_loads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

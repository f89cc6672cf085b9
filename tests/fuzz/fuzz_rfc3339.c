// SPDX-License-Identifier: MIT
/* Time and duration query parameters: RFC 3339, unix seconds, ?seconds=. */
#include "fuzz_util.h"

#include "agent/http_server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_string(data, size);
	int64_t ns;
	double seconds;
	if (!http_parse_time(s, &ns) && ns < 0)
		abort(); /* documented: never before 1970 */
	if (!http_parse_seconds(s, 300, &seconds) && !(seconds > 0 && seconds <= 300))
		abort(); /* documented: positive, at most max_s */
	free(s);
	return 0;
}

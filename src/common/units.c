/* Quantities as people read them (see units.h). */
#include <inttypes.h>
#include <stdio.h>

#include "common/units.h"

int units_format_bytes(char *buf, size_t cap, uint64_t bytes)
{
	static const char *const units[] = { "KiB", "MiB", "GiB",
					     "TiB", "PiB", "EiB" };
	double v;
	size_t u = 0;

	if (bytes < 1024)
		return snprintf(buf, cap, "%" PRIu64 " B", bytes);
	v = (double)bytes / 1024.0;
	/* 1023.96 would print as 1024.0: step up a unit instead. */
	while (v >= 1023.95 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024.0;
		u++;
	}
	return snprintf(buf, cap, "%.1f %s", v, units[u]);
}

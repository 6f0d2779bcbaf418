/* Quantities as people read them, for what ferry and ferry stats print. */
#ifndef FERRY_UNITS_H
#define FERRY_UNITS_H

#include <stddef.h>
#include <stdint.h>

/* Formats BYTES into BUF (CAP bytes): below 1024 as "0 B", "1023 B";
 * from there in binary units with one decimal, "1.0 KiB", "100.0 MiB",
 * "104.9 GiB", up to "16.0 EiB", always in the unit whose value stays
 * below 1024 once rounded (1048575 is "1.0 MiB", not "1024.0 KiB").
 * Returns what snprintf returns. */
int units_format_bytes(char *buf, size_t cap, uint64_t bytes);

#endif

/* Growing arrays: the one helper every part uses to make room for one more
 * element, by doubling. */
#ifndef FERRY_ARRAY_H
#define FERRY_ARRAY_H

#include <stddef.h>

/* Makes room in *ARR (*CAP elements of ELEM bytes, USED in use) for one
 * more: when full, reallocates to twice the capacity (16 at first) and
 * updates *ARR and *CAP. 0, or -ENOMEM with *ARR and *CAP unchanged. */
int array_reserve(void **arr, size_t *cap, size_t used, size_t elem);

#endif

/* Growing arrays (array.h). */
#include "common/array.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

int array_reserve(void **arr, size_t *cap, size_t used, size_t elem)
{
	size_t n;
	void *p;

	if (used < *cap)
		return 0;
	n = *cap == 0 ? 16 : *cap * 2;
	if (n < *cap || n > SIZE_MAX / elem)
		return -ENOMEM;
	p = realloc(*arr, n * elem);
	if (p == NULL)
		return -ENOMEM;
	*arr = p;
	*cap = n;
	return 0;
}

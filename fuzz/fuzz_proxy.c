/* libFuzzer target for the PROXY protocol header (proxy.c). The input is
 * what a connection on a proxy_protocol listener starts with. Checked:
 *   - the answer is -1, 0 or a length within the input and within the
 *     longest header of its version;
 *   - 0 (more must come) only while the input is shorter than the longest
 *     header, and every shorter prefix of a header is 0 too, as conn.c
 *     feeds the parser what it has read so far, however the bytes arrive;
 *   - a header parses to the same length on its own, without the bytes
 *     after it (those are the request line's);
 *   - an address taken is TCP over IPv4 or IPv6, with its length. */
#include <netinet/in.h>
#include <string.h>

#include "fuzz.h"
#include "daemon/proxy.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

static void check_header(const struct proxy_header *h)
{
	if (h->local)
		return;
	if (h->src.ss_family == AF_INET)
		FUZZ_CHECK(h->src_len == sizeof(struct sockaddr_in));
	else if (h->src.ss_family == AF_INET6)
		FUZZ_CHECK(h->src_len == sizeof(struct sockaddr_in6));
	else
		FUZZ_FAIL("an address of family %d", h->src.ss_family);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_header h, again;
	ssize_t n = proxy_parse(data, size, &h), m;
	size_t i;

	FUZZ_CHECK(n >= -1 && n <= (ssize_t)size);
	FUZZ_CHECK(n <= FERRY_PROXY_V2_MAX);
	if (n == 0)
		FUZZ_CHECK(size < FERRY_PROXY_V2_MAX);
	if (n <= 0)
		return 0;
	if (data[0] == 'P')
		FUZZ_CHECK(n <= FERRY_PROXY_V1_MAX);
	check_header(&h);
	m = proxy_parse(data, (size_t)n, &again);
	FUZZ_CHECK(m == n);
	FUZZ_CHECK(again.local == h.local);
	if (!h.local)
		FUZZ_CHECK(again.src_len == h.src_len &&
			   memcmp(&again.src, &h.src, h.src_len) == 0);
	for (i = 0; i < (size_t)n; i++)
		FUZZ_CHECK(proxy_parse(data, i, &again) == 0);
	return 0;
}

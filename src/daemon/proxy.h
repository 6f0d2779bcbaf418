/* The PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and
 * 2) that a load balancer sends before the client's bytes, as pure code:
 * the bytes a connection starts with in, the client's address out. No
 * sockets and no loop; conn.c feeds it what it has read so far. */
#ifndef FERRY_PROXY_H
#define FERRY_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

/* The longest version 1 line, "PROXY ... \r\n" included. */
#define FERRY_PROXY_V1_MAX 107
/* The longest version 2 header taken, TLVs included: the size the
 * specification asks a receiver to accept at least. Longer is refused. */
#define FERRY_PROXY_V2_MAX 536

struct proxy_header {
	/* LOCAL (a health check of the proxy's own), UNKNOWN, UNSPEC or a
	 * family other than TCP over IPv4/IPv6: keep the socket's peer. */
	bool local;
	struct sockaddr_storage src; /* the client, when !local */
	socklen_t src_len;
};

/* Parses the header at the start of BUF (LEN bytes). Returns its length
 * (> 0, so the request line starts at BUF + that) with *OUT set; 0 when
 * the LEN bytes are the start of a valid header and more must come; -1
 * when they cannot start one (no signature, a bad field, too long). */
ssize_t proxy_parse(const void *buf, size_t len, struct proxy_header *out);

#endif

/* Configuration: the YAML file's keys, their types, bounds and defaults.
 * Loading is pure apart from reading the file: it never prints, and it reports
 * every error it finds (not only the first) as "FILE:LINE:COL: message". */
#ifndef FERRY_CONFIG_H
#define FERRY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/log.h"

#define FERRY_MAX_LISTEN 16

enum transfer_mode {
	FERRY_MODE_SENDFILE,
	FERRY_MODE_BUFFERED,
};

enum log_format {
	FERRY_LOG_TEXT,
	FERRY_LOG_JSON,
};

/* One listen address, e.g. "127.0.0.1:7070" or "[::1]:7070". */
struct listen_addr {
	struct sockaddr_storage addr; /* port in network order inside */
	socklen_t addr_len;
	char text[64]; /* as written in the config, for messages */
	bool proxy_protocol; /* each connection starts with a PROXY header */
	bool deferred; /* accepted once the request arrives (default true) */
};

struct config {
	char *file; /* the file this was loaded from */
	struct listen_addr listen[FERRY_MAX_LISTEN];
	size_t listen_count;
	char *root; /* absolute; a relative root is taken from the file's dir */
	enum transfer_mode mode;
	uint64_t chunk_bytes;  /* most bytes one sendfile call moves */
	uint64_t buffer_bytes; /* buffered mode: each of the two buffers */
	uint64_t max_connections;
	uint64_t max_per_client;
	uint64_t request_timeout_ms;
	uint64_t idle_timeout_ms;
	uint64_t send_timeout_ms;
	uint64_t shutdown_timeout_ms;
	uint64_t drain_ms;       /* limits.drain: PING says 503 this long */
	uint64_t rate_bps;       /* limits.rate, per transfer; 0: none */
	uint64_t rate_total_bps; /* limits.rate_total, per worker; 0: none */
	char *transfer_log; /* a path, or "-" for stderr */
	enum log_format log_format;
	uint64_t log_flush_ms;   /* 0: each line at once; else buffered */
	enum log_level log_level;
	unsigned threads;
	char *user; /* account to switch to when started as root, or NULL */
	unsigned workers; /* processes sharing the listeners */
	struct listen_addr metrics_listen; /* addr_len 0: no metrics */
};

/* Error messages collected while loading, each "FILE:LINE:COL: message". */
struct config_diag {
	char **lines;
	size_t count;
};

/* Loads the YAML file at PATH. Returns 0 and sets *OUT, or the number of
 * errors found (> 0) with each one appended to DIAG, or a negative errno when
 * the file cannot be read (also described in DIAG). */
int config_load(const char *path, struct config **out, struct config_diag *diag);

/* Same, from a buffer; NAME is used in messages and BASE_DIR resolves a
 * relative root. For tests and fuzzing. */
int config_parse(const char *name, const char *text, size_t len,
		 const char *base_dir, struct config **out,
		 struct config_diag *diag);

void config_free(struct config *cfg);
void config_diag_free(struct config_diag *diag);

/* "256KiB", "1MiB", "4096" (bytes). 0 or -EINVAL / -ERANGE. */
int config_parse_size(const char *text, uint64_t *bytes);
/* "500ms", "10s", "1m", "2h". 0 or -EINVAL / -ERANGE. */
int config_parse_duration(const char *text, uint64_t *ms);
/* "127.0.0.1:7070", "[::1]:7070", "*:7070". 0 or -EINVAL. */
int config_parse_listen(const char *text, struct listen_addr *out);

#endif

/* Messages about single files and their exit codes (report.h). */
#include "client/report.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

/* A --verify failure: nothing of the file was kept. */
static void report_mismatch(const struct client_job *j)
{
	char got[2 * FERRY_SHA256_BYTES + 1], want[2 * FERRY_SHA256_BYTES + 1];

	if (j->stage == CLIENT_STAGE_CHANGED) {
		fprintf(stderr, "ferry: %s: verification failed: the file "
				"changed on the server during the fetch; "
				"nothing kept\n",
			j->path);
		return;
	}
	proto_format_sha256(got, j->sha256);
	proto_format_sha256(want, j->server_sha256);
	fprintf(stderr, "ferry: %s: verification failed: received SHA-256 %s, "
			"the server's is %s; nothing kept\n",
		j->path, got, want);
}

int report_job(const struct client_job *j, bool resume, bool quiet,
	       const char *retry)
{
	const char *err = strerror(-j->err);
	char timeout[64];

	switch (j->status) {
	case CLIENT_DONE:
		if (resume && j->restarted && !quiet)
			fprintf(stderr,
				"ferry: %s: the file changed on the server or "
				"%s.part had no usable record; fetched it "
				"from the start\n",
				j->path, j->dest);
		return FERRY_EXIT_DONE;
	case CLIENT_REFUSED:
		fprintf(stderr, "ferry: %s: the server refused: %d %s\n",
			j->path, j->code, j->reason);
		return FERRY_EXIT_REFUSED;
	case CLIENT_MISMATCH:
		report_mismatch(j);
		return FERRY_EXIT_VERIFY;
	case CLIENT_PENDING:
	case CLIENT_FAILED:
		break;
	}
	if (j->err == -ECONNRESET)
		err = "the server closed the connection";
	else if (j->err == -ETIMEDOUT) {
		snprintf(timeout, sizeof(timeout),
			 "no progress for %d s; the server is stuck",
			 FERRY_IO_TIMEOUT_MS / 1000);
		err = timeout;
	}
	switch (j->stage) {
	case CLIENT_STAGE_NET:
		fprintf(stderr, "ferry: %s: %s\n", j->path, err);
		break;
	case CLIENT_STAGE_SHORT:
		if (j->dest != NULL)
			fprintf(stderr,
				"ferry: %s: the server closed the connection "
				"after %" PRIu64 " of %" PRIu64 " bytes; "
				"%s.part is kept, %s\n",
				j->path, j->received, j->length, j->dest,
				retry);
		else
			fprintf(stderr,
				"ferry: %s: the server closed the connection "
				"after %" PRIu64 " of %" PRIu64 " bytes; the "
				"output is incomplete\n",
				j->path, j->received, j->length);
		break;
	case CLIENT_STAGE_PROTOCOL:
		fprintf(stderr, "ferry: %s: the server's reply is not in the "
				"ferry protocol\n",
			j->path);
		break;
	case CLIENT_STAGE_PART:
		if (j->dest != NULL)
			fprintf(stderr, "ferry: %s: writing %s: %s\n", j->path,
				j->part[0] != '\0' ? j->part : j->dest, err);
		else
			fprintf(stderr, "ferry: %s: writing standard "
					"output: %s\n",
				j->path, err);
		break;
	case CLIENT_STAGE_META:
		fprintf(stderr, "ferry: %s: writing %s: %s\n", j->path,
			j->meta, err);
		break;
	case CLIENT_STAGE_FINISH:
		fprintf(stderr, "ferry: %s: finishing %s: %s\n", j->path,
			j->dest, err);
		break;
	case CLIENT_STAGE_CHANGED:
		fprintf(stderr, "ferry: %s: the file changed on the server "
				"while resuming; run ferry again\n",
			j->path);
		break;
	case CLIENT_STAGE_VERIFY: /* only with CLIENT_MISMATCH */
	case CLIENT_STAGE_ABORTED:
		fprintf(stderr, "ferry: %s: not fetched: the connection "
				"failed earlier (%s)\n",
			j->path, err);
		break;
	}
	return FERRY_EXIT_FAILED;
}

void report_progress(const char *line)
{
	fprintf(stderr, "\r%s\033[K", line);
}

void report_progress_clear(void)
{
	fprintf(stderr, "\r\033[K");
}

int report_connect(const struct client_target *t, const struct client_conn *c,
		   int rc)
{
	if (c->gai_error != 0)
		fprintf(stderr, "ferry: cannot resolve %s: %s\n", t->host,
			gai_strerror(c->gai_error));
	else
		fprintf(stderr, "ferry: cannot connect to %s port %s: %s\n",
			t->host, t->port, strerror(-rc));
	return FERRY_EXIT_FAILED;
}

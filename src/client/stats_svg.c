/* `ferry stats --svg`: the plot of throughput over time (see stats.h).
 * Mode names reach the SVG escaped as XML text and attributes, so no byte of
 * a log can become markup. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/stats.h"

/* -- the SVG plot -----------------------------------------------------------
 *
 * A fixed 800x440 canvas: the plot area, the MiB/s axis on the left, time
 * (UTC) below, the legend on the right. Each mode with completed transfers
 * is one <g class="series" data-mode="..." data-transfers="N"> holding a
 * polyline through its points in time order (when it has two or more) and
 * one circle per point: one per transfer up to SVG_MAX_POINTS, beyond that
 * one per pixel column (see series_points). */

#define SVG_W 800
#define SVG_H 440
#define PLOT_X0 70.0
#define PLOT_X1 620.0
#define PLOT_Y0 40.0
#define PLOT_Y1 370.0
#define SVG_MAX_POINTS 1000 /* per series; see series_points */

/* Fixed colours for the daemon's modes, so a plot reads the same whichever
 * modes it holds; other modes take the rest in turn. */
static const char *mode_colour(const char *name, size_t *next_other)
{
	static const char *const others[] = { "#d62728", "#9467bd",
					      "#8c564b", "#e377c2",
					      "#7f7f7f", "#17becf" };

	if (strcmp(name, "sendfile") == 0)
		return "#1f77b4";
	if (strcmp(name, "buffered") == 0)
		return "#ff7f0e";
	if (strcmp(name, "list") == 0)
		return "#2ca02c";
	return others[(*next_other)++ % (sizeof(others) / sizeof(others[0]))];
}

/* Writes S for XML text or an attribute value: percent-encoded as in the
 * log (so only printable ASCII is left), then the markup characters as
 * entities. */
static void put_xml(FILE *out, const char *s)
{
	char stack[256];
	char *buf = stats_encode(s, stack, sizeof(stack));
	size_t i;

	if (buf == NULL) {
		fputs("?", out);
		return;
	}
	for (i = 0; buf[i] != '\0'; i++) {
		switch (buf[i]) {
		case '&': fputs("&amp;", out); break;
		case '<': fputs("&lt;", out); break;
		case '>': fputs("&gt;", out); break;
		case '"': fputs("&quot;", out); break;
		case '\'': fputs("&apos;", out); break;
		default: fputc(buf[i], out); break;
		}
	}
	if (buf != stack)
		free(buf);
}

/* The smallest of 1, 2, 5 times a power of ten that is >= RAW (> 0); *DEC
 * gets the decimals its multiples need. */
static double nice_step(double raw, int *dec)
{
	double p = 1.0;
	int d = 0;

	while (p > raw) {
		p /= 10.0;
		d++;
	}
	while (p * 10.0 <= raw) {
		p *= 10.0;
		if (d > 0)
			d--;
	}
	*dec = d;
	if (p >= raw)
		return p;
	if (2 * p >= raw)
		return 2 * p;
	if (5 * p >= raw)
		return 5 * p;
	*dec = d > 0 ? d - 1 : 0;
	return 10 * p;
}

/* A time step giving at most six ticks over SPAN_MS. */
static int64_t time_step(int64_t span_ms)
{
	static const int64_t steps_ms[] = {
		1,	  2,	    5,	      10,	20,	   50,
		100,	  200,	    500,      1000,	2000,	   5000,
		10000,	  15000,    30000,    60000,	120000,	   300000,
		600000,	  900000,   1800000,  3600000,	7200000,   10800000,
		21600000, 43200000, 86400000, 172800000, 604800000,
		1209600000, 2592000000, 7776000000, 15552000000, 31536000000,
	};
	size_t i;

	for (i = 0; i < sizeof(steps_ms) / sizeof(steps_ms[0]); i++)
		if (span_ms / steps_ms[i] <= 5)
			return steps_ms[i];
	return (span_ms / 5 / STATS_MS_PER_DAY + 1) * STATS_MS_PER_DAY;
}

static void format_tick(int64_t ms, int64_t step, int64_t span, char *buf,
			size_t cap)
{
	struct tm tm;
	int msec;

	stats_utc_fields(ms, &tm, &msec);
	if (step >= STATS_MS_PER_DAY)
		snprintf(buf, cap, "%04d-%02d-%02d", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday);
	else if (span > STATS_MS_PER_DAY)
		snprintf(buf, cap, "%02d-%02d %02d:%02d", tm.tm_mon + 1,
			 tm.tm_mday, tm.tm_hour, tm.tm_min);
	else if (step >= 60 * STATS_MS_PER_S)
		snprintf(buf, cap, "%02d:%02d", tm.tm_hour, tm.tm_min);
	else if (step >= STATS_MS_PER_S)
		snprintf(buf, cap, "%02d:%02d:%02d", tm.tm_hour, tm.tm_min,
			 tm.tm_sec);
	else
		snprintf(buf, cap, "%02d:%02d:%02d.%03d", tm.tm_hour,
			 tm.tm_min, tm.tm_sec, msec);
}

/* The scales of one plot: where times and rates go on the canvas. */
struct plot {
	int64_t t0;	/* the left edge */
	int64_t span;	/* ms, > 0 */
	double ytop;	/* MiB/s at the top edge, > 0 */
	double ystep;	/* MiB/s between grid lines */
	size_t yticks;	/* grid lines above 0 */
	int decimals;	/* of the MiB/s tick labels */
	size_t points;	/* completed transfers in all series */
	bool reduced;	/* some series is shown per pixel column */
};

static double px(const struct plot *pl, int64_t ms)
{
	return PLOT_X0 +
	       (PLOT_X1 - PLOT_X0) * (double)(ms - pl->t0) / (double)pl->span;
}

/* Rates above the top (only a crafted line has them) stay on the frame. */
static double py(const struct plot *pl, double v)
{
	return PLOT_Y1 - (PLOT_Y1 - PLOT_Y0) * (v < pl->ytop ? v : pl->ytop) /
				 pl->ytop;
}

/* Fits the scales to the completed transfers of S (finished). */
static void plot_fit(const struct stats *s, struct plot *pl)
{
	int64_t t0 = INT64_MAX, t1 = INT64_MIN;
	double ymax = 0.0;
	size_t i;

	memset(pl, 0, sizeof(*pl));
	for (i = 0; i < s->nmodes; i++) {
		const struct stats_mode *m = &s->modes[i];

		if (m->samples == 0)
			continue;
		pl->points += m->samples;
		if (m->samples > SVG_MAX_POINTS)
			pl->reduced = true;
		if (m->points[0].time_ms < t0)
			t0 = m->points[0].time_ms;
		if (m->points[m->samples - 1].time_ms > t1)
			t1 = m->points[m->samples - 1].time_ms;
		if (m->rates[m->samples - 1] > ymax)
			ymax = m->rates[m->samples - 1];
	}
	if (pl->points == 0) {
		t0 = 0;
		t1 = 60 * STATS_MS_PER_S;
	} else if (t0 == t1) {
		/* One instant: centre it in a minute. */
		t0 -= 30 * STATS_MS_PER_S;
		t1 += 30 * STATS_MS_PER_S;
	} else {
		/* A margin of 2 % keeps the first and last points off the
		 * frame. */
		int64_t pad = (t1 - t0) / 50 + 1;

		t0 -= pad;
		t1 += pad;
	}
	pl->t0 = t0;
	pl->span = t1 - t0;

	/* Logged rates have two decimals; a scale outside these bounds can
	 * only come from a crafted line, and would not print. */
	if (!(ymax > 1e-9))
		ymax = 1.0;
	if (ymax > 1e15)
		ymax = 1e15;
	pl->ystep = nice_step(ymax / 5.0, &pl->decimals);
	/* Whole steps up to 5 % above the largest value, so that no point
	 * sits on the frame. */
	for (pl->yticks = 1; (double)pl->yticks * pl->ystep < ymax * 1.05;
	     pl->yticks++)
		;
	pl->ytop = (double)pl->yticks * pl->ystep;
}

/* The frame, grid, ticks, axis titles and notes. */
static void svg_axes(FILE *out, const struct plot *pl)
{
	int64_t step, t, t1 = pl->t0 + pl->span;
	char buf[64];
	size_t k;

	fputs("<g class=\"axes\">\n", out);
	for (k = 0; k <= pl->yticks; k++) {
		double v = (double)k * pl->ystep, y = py(pl, v);

		fprintf(out,
			"<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
			"stroke=\"#ddd\"/>\n",
			PLOT_X0, y, PLOT_X1, y);
		fprintf(out,
			"<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" "
			"text-anchor=\"end\">%.*f</text>\n",
			PLOT_X0 - 6, y + 4, pl->decimals, v);
	}
	if (pl->points > 0) {
		step = time_step(pl->span);
		for (t = (stats_floor_div(pl->t0, step) + 1) * step; t < t1;
		     t += step) {
			double x = px(pl, t);

			format_tick(t, step, pl->span, buf, sizeof(buf));
			fprintf(out,
				"<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
				"y2=\"%.1f\" stroke=\"#000\"/>\n",
				x, PLOT_Y1, x, PLOT_Y1 + 5);
			fprintf(out,
				"<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" "
				"text-anchor=\"middle\">%s</text>\n",
				x, PLOT_Y1 + 18, buf);
		}
	}
	fprintf(out,
		"<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
		"fill=\"none\" stroke=\"#000\"/>\n",
		PLOT_X0, PLOT_Y0, PLOT_X1 - PLOT_X0, PLOT_Y1 - PLOT_Y0);
	fprintf(out,
		"<text x=\"18\" y=\"%.1f\" text-anchor=\"middle\" "
		"transform=\"rotate(-90 18 %.1f)\">MiB/s</text>\n",
		(PLOT_Y0 + PLOT_Y1) / 2, (PLOT_Y0 + PLOT_Y1) / 2);
	if (pl->points > 0) {
		stats_format_time(pl->t0, buf, sizeof(buf));
		fprintf(out,
			"<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">"
			"time (UTC) from %s</text>\n",
			(PLOT_X0 + PLOT_X1) / 2, PLOT_Y1 + 42, buf);
	} else {
		fprintf(out,
			"<text class=\"note\" x=\"%.1f\" y=\"%.1f\" "
			"text-anchor=\"middle\">no completed transfers to "
			"plot</text>\n",
			(PLOT_X0 + PLOT_X1) / 2, (PLOT_Y0 + PLOT_Y1) / 2);
	}
	if (pl->reduced)
		fprintf(out,
			"<text class=\"note\" x=\"%.1f\" y=\"%d\" "
			"font-size=\"10\">series of more than %d transfers "
			"show the median of each pixel column</text>\n",
			PLOT_X0, SVG_H - 8, SVG_MAX_POINTS);
	fputs("</g>\n", out);
}

struct xy {
	double x;
	double y;
};

/* The canvas points of M's series: one per transfer, or, past
 * SVG_MAX_POINTS, one per pixel column holding the median (nearest rank) of
 * that column's transfers, since more points than pixels show nothing more
 * and make a file a browser chokes on. *OUT is the caller's to free. */
static int series_points(const struct stats_mode *m, const struct plot *pl,
			 struct xy **out, size_t *n)
{
	struct xy *xy = malloc(m->samples * sizeof(*xy));
	double *run = NULL;
	size_t i, j, k = 0;

	if (xy == NULL)
		return -ENOMEM;
	if (m->samples <= SVG_MAX_POINTS) {
		for (i = 0; i < m->samples; i++) {
			xy[i].x = px(pl, m->points[i].time_ms);
			xy[i].y = py(pl, m->points[i].mib_per_s);
		}
		*out = xy;
		*n = m->samples;
		return 0;
	}
	run = malloc(m->samples * sizeof(*run));
	if (run == NULL) {
		free(xy);
		return -ENOMEM;
	}
	/* The points are in time order, so a column's points are one run. */
	for (i = 0; i < m->samples; i = j) {
		long column = (long)px(pl, m->points[i].time_ms);

		for (j = i; j < m->samples &&
			    (long)px(pl, m->points[j].time_ms) == column;
		     j++)
			run[j - i] = m->points[j].mib_per_s;
		qsort(run, j - i, sizeof(*run), stats_cmp_double);
		xy[k].x = (double)column + 0.5;
		xy[k].y = py(pl, stats_percentile(run, j - i, 50));
		k++;
	}
	free(run);
	*out = xy;
	*n = k;
	return 0;
}

/* One mode's group: a polyline through its points and a circle on each. */
static int svg_series(FILE *out, const struct stats_mode *m,
		      const struct plot *pl, const char *colour)
{
	struct xy *xy;
	size_t i, n;
	int rc;

	rc = series_points(m, pl, &xy, &n);
	if (rc < 0)
		return rc;
	fputs("<g class=\"series\" data-mode=\"", out);
	put_xml(out, m->name);
	fprintf(out,
		"\" data-transfers=\"%zu\" fill=\"%s\" stroke=\"%s\">\n",
		m->samples, colour, colour);
	fputs("<title>", out);
	put_xml(out, m->name);
	fputs("</title>\n", out);
	if (n > 1) {
		fputs("<polyline fill=\"none\" stroke-width=\"1.5\" points=\"",
		      out);
		for (i = 0; i < n; i++)
			fprintf(out, "%s%.1f,%.1f", i > 0 ? " " : "", xy[i].x,
				xy[i].y);
		fputs("\"/>\n", out);
	}
	for (i = 0; i < n; i++)
		fprintf(out,
			"<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" "
			"stroke=\"none\"/>\n",
			xy[i].x, xy[i].y);
	fputs("</g>\n", out);
	free(xy);
	return 0;
}

int stats_svg(struct stats *s, FILE *out)
{
	struct plot pl;
	size_t i, row, next_other;
	int rc;

	stats_finish(s);
	plot_fit(s, &pl);

	fputs("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n",
	      out);
	fprintf(out,
		"<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" "
		"width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
		"font-family=\"sans-serif\" font-size=\"12\">\n",
		SVG_W, SVG_H, SVG_W, SVG_H);
	fputs("<title>ferry transfer throughput</title>\n", out);
	fprintf(out,
		"<desc>Throughput in MiB/s of each completed transfer "
		"(status 200, bytes &gt; 0) over time (UTC), one series per "
		"mode: %zu transfers.</desc>\n",
		pl.points);
	fprintf(out, "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n",
		SVG_W, SVG_H);
	fprintf(out,
		"<text x=\"%.1f\" y=\"24\" text-anchor=\"middle\" "
		"font-size=\"15\">ferry transfer throughput</text>\n",
		(PLOT_X0 + PLOT_X1) / 2);
	svg_axes(out, &pl);

	next_other = 0;
	for (i = 0; i < s->nmodes; i++) {
		if (s->modes[i].samples == 0)
			continue;
		rc = svg_series(out, &s->modes[i], &pl,
				mode_colour(s->modes[i].name, &next_other));
		if (rc < 0)
			return rc;
	}

	/* The legend, in the same order and colours. */
	fputs("<g class=\"legend\">\n", out);
	next_other = 0;
	for (i = 0, row = 0; i < s->nmodes; i++) {
		const struct stats_mode *m = &s->modes[i];
		double y = PLOT_Y0 + 10 + 20.0 * (double)row;

		if (m->samples == 0)
			continue;
		row++;
		fprintf(out,
			"<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" "
			"height=\"12\" fill=\"%s\"/>\n",
			PLOT_X1 + 20, y - 10,
			mode_colour(m->name, &next_other));
		fprintf(out, "<text x=\"%.1f\" y=\"%.1f\">", PLOT_X1 + 38, y);
		put_xml(out, m->name);
		fprintf(out, " (%zu)</text>\n", m->samples);
	}
	fputs("</g>\n</svg>\n", out);
	return ferror(out) ? -EIO : 0;
}

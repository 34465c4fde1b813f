/* Statistics for platform measurements: least-squares lines, percentile summaries and
 * the knee of a latency-against-bandwidth curve. Pure functions on caller storage. */
#ifndef RTVIO_PLATFORM_FIT_H
#define RTVIO_PLATFORM_FIT_H

#include <stdbool.h>
#include <stddef.h>

struct linfit {
	double slope;
	double intercept;
	double r2;		/* coefficient of determination; 1 when y is constant */
	size_t n;
};

/* y = slope * x + intercept by ordinary least squares. -EINVAL for n < 2 or a
 * non-finite input, -EDOM when all x are equal (no slope exists). */
int fit_linear(const double *x, const double *y, size_t n, struct linfit *out);

/* Nearest-rank percentile (p in [0, 100]) of an ascending array: the smallest value
 * with at least p % of the samples at or below it. NaN for n == 0. */
double fit_percentile_sorted(const double *sorted, size_t n, double p);

struct summary {
	size_t n;
	double min, median, p90, p99, max, mean;
};

/* Sorts v in place and summarises it. -EINVAL for n == 0 or a NaN sample. */
int fit_summarize(double *v, size_t n, struct summary *out);

/* Median of v (sorted in place). NaN for n == 0. */
double fit_median(double *v, size_t n);

struct knee {
	bool found;
	size_t index;		/* first step with latency > factor * unloaded */
	double knee_bw;		/* that step's achieved bandwidth */
	double budgetable_bw;	/* largest achieved bandwidth before the knee and below it */
};

/* Steps come in the order they were run (rising target rate). A step is over the knee
 * when lat[i] > factor * unloaded. The budgetable bandwidth is the largest bw[i] of the
 * steps before the knee that is also below the knee's own bandwidth (interferers may
 * achieve less than asked, so rising targets do not guarantee rising bandwidth).
 * Without a knee it is the largest bw of all steps. -EINVAL for n == 0, factor <= 1,
 * unloaded <= 0 or non-finite inputs. */
int fit_knee(const double *bw, const double *lat, size_t n, double unloaded, double factor,
	     struct knee *out);

#endif

/* Least squares, percentiles and knee detection: see fit.h. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "fit.h"

int fit_linear(const double *x, const double *y, size_t n, struct linfit *out)
{
	double mx = 0, my = 0, sxx = 0, sxy = 0, syy = 0;

	if (n < 2)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(x[i]) || !isfinite(y[i]))
			return -EINVAL;
		mx += x[i];
		my += y[i];
	}
	mx /= (double)n;
	my /= (double)n;
	/* Centred sums: the naive sum-of-squares formula cancels catastrophically for
	 * x values like nanosecond timestamps. */
	for (size_t i = 0; i < n; i++) {
		double dx = x[i] - mx, dy = y[i] - my;

		sxx += dx * dx;
		sxy += dx * dy;
		syy += dy * dy;
	}
	if (sxx == 0)
		return -EDOM;
	out->slope = sxy / sxx;
	out->intercept = my - out->slope * mx;
	out->r2 = syy == 0 ? 1.0 : (sxy * sxy) / (sxx * syy);
	out->n = n;
	return 0;
}

double fit_percentile_sorted(const double *sorted, size_t n, double p)
{
	double rank;
	size_t k;

	if (!n)
		return NAN;
	if (p <= 0)
		return sorted[0];
	if (p >= 100)
		return sorted[n - 1];
	/* p * n first: 90.0 / 100 * 100 is not exactly 90 in binary. */
	rank = ceil(p * (double)n / 100.0);
	k = rank < 1 ? 1 : (size_t)rank;
	return sorted[(k > n ? n : k) - 1];
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double fit_median(double *v, size_t n)
{
	if (!n)
		return NAN;
	qsort(v, n, sizeof *v, cmp_double);
	if (n % 2)
		return v[n / 2];
	return (v[n / 2 - 1] + v[n / 2]) / 2;
}

int fit_summarize(double *v, size_t n, struct summary *out)
{
	double sum = 0;

	if (!n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (isnan(v[i]))
			return -EINVAL;
		sum += v[i];
	}
	out->n = n;
	out->median = fit_median(v, n);
	out->min = v[0];
	out->max = v[n - 1];
	out->p90 = fit_percentile_sorted(v, n, 90);
	out->p99 = fit_percentile_sorted(v, n, 99);
	out->mean = sum / (double)n;
	return 0;
}

int fit_knee(const double *bw, const double *lat, size_t n, double unloaded, double factor,
	     struct knee *out)
{
	double limit, best = -1;
	size_t end;

	if (!n || !(factor > 1) || !(unloaded > 0) || !isfinite(factor) || !isfinite(unloaded))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!isfinite(bw[i]) || !isfinite(lat[i]))
			return -EINVAL;
	limit = factor * unloaded;
	*out = (struct knee){ .found = false };
	for (size_t i = 0; i < n; i++) {
		if (lat[i] > limit) {
			out->found = true;
			out->index = i;
			out->knee_bw = bw[i];
			break;
		}
	}
	end = out->found ? out->index : n;
	for (size_t i = 0; i < end; i++) {
		if (out->found && !(bw[i] < out->knee_bw))
			continue;
		if (bw[i] > best)
			best = bw[i];
	}
	out->budgetable_bw = best < 0 ? 0 : best;
	return 0;
}

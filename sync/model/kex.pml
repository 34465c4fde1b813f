/* The k-exclusion lock of sync/kex.c, step for step, for N processes (3 or 4) and
 * K = 2 slots.
 *
 * Each C atomic is one step: the ticket's fetch-add, the acquire polls of admit and of
 * done (blocking guards stand for the spin loops), the claim inside the admission turn
 * (load of busy, then fetch-or of the chosen bit), the release store of admit, and the
 * unlock's fetch-and of busy and fetch-add of done. Tickets count modulo MOD = N + 1
 * where C counts modulo 2^32: more than can be outstanding. The try variant is not
 * modelled.
 *
 * Checked: at most K holders and one holder per slot (assert; the slot chosen from a
 * single pass must be free); FIFO admission (a monitor queue records ticket order, each
 * admission must be its head); no starvation (LTL, weak fairness; process 0 stands for
 * all by symmetry).
 *
 * -DBROKEN_ADMIT skips the wait for the admission turn: a later ticket may be admitted
 * before an earlier one. */
#ifndef N
#define N 3
#endif
#ifndef K
#define K 2
#endif
#define MOD (N + 1)

byte next = 0, admit = 0, done = 0;
byte busy = 0;			/* bit s: slot s held */
byte holders = 0;		/* monitor */
byte owner[K];			/* monitor: 0 free, else holder pid + 1 */
chan order = [N] of { byte };	/* monitor: pids in ticket order, not admitted yet */

active [N] proctype P()
{
	byte t, b, s;

	do
	::	atomic { t = next; next = (next + 1) % MOD; order!_pid };
wait:
#ifndef BROKEN_ADMIT
		(admit == t);
#endif
		((t + MOD - done) % MOD < K);	/* fewer than K earlier tickets hold */
		/* claim_and_pass: one load of busy, a single pass, the fetch-or */
		atomic {
			b = busy;
			assert(order?[eval(_pid)]); order?eval(_pid);
			holders++; assert(holders <= K)
		};
		s = 0;
		do
		:: s < K - 1 && (b & (1 << s)) -> s++
		:: else -> break
		od;
		atomic {
			busy = busy | (1 << s);
			assert(owner[s] == 0); owner[s] = _pid + 1
		};
		admit = (t + 1) % MOD;
cs:		/* unlock: free the slot, then count the release */
		atomic { owner[s] = 0; holders--; busy = busy & ~(1 << s) };
		atomic { done = (done + 1) % MOD; t = 0; b = 0; s = 0 }
	od
}

ltl no_starvation { [] (P[0]@wait -> <> P[0]@cs) }

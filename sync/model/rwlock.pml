/* The phase-fair lock of sync/rwlock.c, step for step, for N processes (3 or 4), each
 * choosing to read or to write on every request.
 *
 * rin is one C word: the reader count above the two writer bits. Here it is the pair
 * (rcnt, wb), and each C atomic on rin reads or writes both in one step: the reader's
 * fetch-add, the writer's fetch-or and the unlock's fetch-and. Counts run modulo
 * CM = N + 1 where C counts modulo 2^30: more than the readers that can be inside;
 * writer tickets modulo 2N (C: 2^32), even so that the phase id alternates.
 * Blocking guards stand for the spin loops (acquire polls). The try variants are not
 * modelled.
 *
 * Checked: readers never beside a writer and one writer at a time (assert); FIFO:
 * writers are granted in ticket order (monitor queue), and a reader is granted exactly
 * in the reader phase that follows the writer present at its arrival (before any later
 * writer: the count of writer releases it sees at its grant); no starvation of reads
 * or writes (LTL, weak fairness; process 0 stands for all by symmetry).
 *
 * -DBROKEN_PHASE leaves the phase id out of the writer bits: a reader can miss the end
 * of a writer phase when the next writer sets the same bits, and waits forever for a
 * writer that waits for it. */
#ifndef N
#define N 3
#endif
#define CM (N + 1)
#define WM (2 * N)	/* writer tickets: more than N, and even so that parity alternates */
#define PRES 2
#define PHID 1

byte rcnt = 0, wb = 0;	/* rin */
byte rout = 0;
byte win = 0, wout = 0;
byte nr = 0, nw = 0;	/* monitor: readers and writers inside */
byte wdone = 0;		/* monitor: writer releases, modulo CM */
chan wq = [N] of { byte };	/* monitor: writers in ticket order, not granted yet */

active [N] proctype P()
{
	byte w, t, seen;

	do
	:: /* read: fetch-add on rin, then poll the writer bits */
		atomic { w = wb; rcnt = (rcnt + 1) % CM; seen = wdone };
rwait:		atomic {
			(w == 0 || wb != w) ->
			/* granted after the writer present at arrival, before any later one */
			assert(w == 0 && wdone == seen || w != 0 && wdone == (seen + 1) % CM);
			nr++; assert(nw == 0)
		};
rcs:		atomic { nr--; rout = (rout + 1) % CM; w = 0; seen = 0 }
	:: /* write: a ticket, the turn, the bits, then the readers drain */
		atomic { t = win; win = (win + 1) % WM; wq!_pid };
		(wout == t);
#ifdef BROKEN_PHASE
		w = PRES;
#else
		w = PRES | (t & PHID);
#endif
		atomic { t = rcnt; wb = wb | w };
wwait:		atomic {
			(rout == t) ->
			assert(wq?[eval(_pid)]); wq?eval(_pid);
			nw++; assert(nw == 1 && nr == 0)
		};
		/* unlock: fetch-and clearing the bits (the monitor counts the release in
		 * the same step), then the release store of the next turn */
wcs:		atomic { nw--; wdone = (wdone + 1) % CM; wb = wb & ~3 };
		atomic { wout = (wout + 1) % WM; t = 0; w = 0 }
	od
}

ltl no_starvation { [] ((P[0]@rwait -> <> P[0]@rcs) && (P[0]@wwait -> <> P[0]@wcs)) }

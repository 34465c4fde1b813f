/* The ticket lock of sync/mutex.c, step for step, for N processes (3 or 4).
 *
 * The C word is next << 16 | serving; here its two halves are two variables that
 * every step reads or writes together, as the C code's single atomics do: the
 * fetch-add of a ticket, the acquire load that polls for the grant (a blocking guard
 * stands for the spin loop: it passes in the first state where the load would see the
 * ticket), the try's load and compare-exchange of the whole word, and the unlock's load
 * and compare-exchange loop. Tickets count modulo MOD = N + 1 where C counts modulo
 * 2^16: either way the modulus exceeds the number of tickets that can be outstanding
 * (one per process), which is all the lock relies on; the small modulus makes the
 * model exercise wrap-around constantly.
 *
 * Checked: mutual exclusion (assert), FIFO grants (a monitor queue records the order
 * in which tickets were drawn; each grant must be its head), and no starvation (LTL
 * below, under weak fairness; process 0 stands for all by symmetry).
 *
 * -DWITH_TRY adds sync_mutex_trylock() as a second way to request (check.sh runs it
 * with 3 processes: its stale load multiplies the states).
 *
 * -DBROKEN_TICKET skips the ticket increment: two requests share a ticket. */
#ifndef N
#define N 3
#endif
#define MOD (N + 1)

byte next = 0;
byte serving = 0;
byte inside = 0;
chan order = [N] of { byte };	/* monitor: pids in ticket order, not granted yet */

inline grant()
{
	assert(order?[eval(_pid)]);	/* the head of the ticket order is us */
	order?eval(_pid);
	inside++;
	assert(inside == 1)
}

/* sync_mutex_unlock: a compare-exchange loop on the whole word whose failed attempts
 * change nothing, so its one successful exchange is the step: serving + 1 within its
 * half, next untouched. */
inline unlock()
{
	atomic { inside--; serving = (serving + 1) % MOD; t = 0 }
}

active [N] proctype P()
{
	byte t, vn, vs;	/* vn, vs: the try's load of the word */

	do
	:: /* sync_mutex_lock: enqueue, then poll granted */
		atomic {
			t = next;
#ifndef BROKEN_TICKET
			next = (next + 1) % MOD;
#endif
			order!_pid
		};
wait:		atomic { serving == t -> grant() };
cs:		unlock()
#ifdef WITH_TRY
	:: /* sync_mutex_trylock: relaxed load, then compare-exchange of the word */
		atomic { vn = next; vs = serving };	/* one load of the word */
		if
		:: vn == vs ->
			atomic {
				if
				:: next == vn && serving == vs ->
					next = (next + 1) % MOD; order!_pid; grant()
				:: else -> goto fail
				fi
			};
			unlock()
		:: else
		fi;
fail:		vn = 0; vs = 0	/* dead values, cleared to keep the state space small */
#endif
	od
}

ltl no_starvation { [] (P[0]@wait -> <> P[0]@cs) }

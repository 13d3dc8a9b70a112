"""fairseq's epoch iterator, resumable mid-epoch on another number of processes.

fairseq shards an epoch's batches across processes (batch i goes to rank i mod N: fairseq/data/iterators.py,
ShardedIterator) and records in the checkpoint how many batches *this* process has taken (EpochBatchIterator.
state_dict: iterations_in_epoch). Resumed on another number of processes, that count is read as a count of the new
shards: 2 processes stopped after 4 batches each (8 of the epoch) resume on 1 process at batch 4, training batches
4-7 twice; 1 process stopped after 8 resumes on 2 at their batch 8 each (16 of the epoch), skipping 8. Silently.

This iterator records its number of shards beside the count and, loaded by another number, converts the count to
the batches of the epoch taken so far divided by the new number, so the epoch continues at the batch where it
stopped (an end-of-epoch checkpoint records 0 and needs nothing). It is only exact where the new number divides
those batches: with the effective batch kept (N processes x --update-freq k the same), it always does."""

from fairseq.data import iterators

from ..errors import CheckpointError


class ReshardingEpochBatchIterator(iterators.EpochBatchIterator):
    def state_dict(self):
        state = super().state_dict()
        state["num_shards"] = self.num_shards
        return state

    def load_state_dict(self, state_dict):
        return super().load_state_dict(resharded(state_dict, self.num_shards))


def resharded(state: dict, num_shards: int) -> dict:
    """The iterator state `state` (written by `state["num_shards"]` processes, if it says) for `num_shards`."""
    written = state.get("num_shards", num_shards)
    taken = state.get("iterations_in_epoch", 0)
    if written == num_shards or not taken:
        return state
    batches = taken * written
    if batches % num_shards:
        raise CheckpointError(
            f"the checkpoint stopped mid-epoch after {batches} batches of epoch {state.get('epoch')} ({taken} on each "
            f"of {written} processes), which {num_shards} processes cannot share evenly: resume it on {written} "
            f"processes, or from a checkpoint written at the end of an epoch"
        )
    return dict(state, iterations_in_epoch=batches // num_shards, num_shards=num_shards)

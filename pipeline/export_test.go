package pipeline

// Failing returns how many orders the keeper holds as failed, waiting for
// their next try, as of its last pass.
func (k *DocumentKeeper) Failing() int { return int(k.failing.Load()) }

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/fapiaohub/invoicer/providers/nuonuo"
	"github.com/nats-io/nats.go/jetstream"
)

// tokenBucket is the JetStream key-value bucket in which every consumer
// instance shares the Nuonuo access tokens (one per app and token endpoint,
// under nuonuo.TokenSourceConfig.Key's default), so that the token
// endpoint's 50-calls-a-month budget is spent once per token life, not once
// per instance.
const tokenBucket = "INVOICE_TOKENS"

// kvTokenStore is a nuonuo.TokenStore on a JetStream key-value bucket,
// using the bucket's revisions for compare-and-swap.
type kvTokenStore struct{ kv jetstream.KeyValue }

var _ nuonuo.TokenStore = kvTokenStore{}

// Load implements nuonuo.TokenStore.
func (s kvTokenStore) Load(ctx context.Context, key string) (nuonuo.Token, uint64, error) {
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nuonuo.Token{}, 0, nuonuo.ErrNoToken
	}
	if err != nil {
		return nuonuo.Token{}, 0, fmt.Errorf("load token %s: %w", key, err)
	}
	var tok nuonuo.Token
	if err := json.Unmarshal(e.Value(), &tok); err != nil {
		return nuonuo.Token{}, 0, fmt.Errorf("decode token %s: %w", key, err)
	}
	return tok, e.Revision(), nil
}

// Store implements nuonuo.TokenStore.
func (s kvTokenStore) Store(ctx context.Context, key string, tok nuonuo.Token, rev uint64) (uint64, error) {
	data, err := json.Marshal(tok)
	if err != nil {
		return 0, fmt.Errorf("encode token: %w", err)
	}
	var next uint64
	if rev == 0 {
		next, err = s.kv.Create(ctx, key, data)
	} else {
		next, err = s.kv.Update(ctx, key, data, rev)
	}
	switch {
	case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		return 0, nuonuo.ErrTokenConflict
	case err != nil:
		return 0, fmt.Errorf("store token %s: %w", key, err)
	}
	return next, nil
}

// openTokenStore creates (or opens) the token bucket.
func openTokenStore(ctx context.Context, js jetstream.JetStream, replicas int) (kvTokenStore, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      tokenBucket,
		Description: "Nuonuo access tokens shared by every consumer instance",
		History:     1,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return kvTokenStore{}, fmt.Errorf("token bucket %s: %w", tokenBucket, err)
	}
	return kvTokenStore{kv: kv}, nil
}

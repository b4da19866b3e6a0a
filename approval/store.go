package approval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/wire"
)

// Store keeps approval requests in Redis: each one a JSON record under its
// own key, expiring Retention after its own expiry, and an index ordered by
// request time.
//
// Requests live only in Redis. A Redis that lost its data loses the
// requests in it, which fails closed: nothing is applied without a new
// request and approval. What was requested, approved, refused and applied
// is in the audit trail.
type Store struct {
	rc        redis.UniversalClient
	keys      wire.Keys
	retention time.Duration
}

// NewStore returns a store under the hash tag of prefix.
func NewStore(rc redis.UniversalClient, prefix string, retention time.Duration) (*Store, error) {
	if rc == nil {
		return nil, errors.New("approval: the Redis client is nil")
	}
	if retention <= 0 {
		return nil, errors.New("approval: the retention must be positive")
	}
	keys, err := wire.NewKeys(prefix)
	if err != nil {
		return nil, fmt.Errorf("approval: %w", err)
	}
	return &Store{rc: rc, keys: keys, retention: retention}, nil
}

// ttl is how long the record of a lives from now on.
func (s *Store) ttl(a api.Approval, now time.Time) time.Duration {
	end := a.ExpiresAt
	if a.DecidedAt.After(end) {
		end = a.DecidedAt
	}
	if a.AppliedAt.After(end) {
		end = a.AppliedAt
	}
	return max(end.Sub(now), 0) + s.retention
}

// Create stores a new request. It fails if a request of the same id exists.
func (s *Store) Create(ctx context.Context, a api.Approval) error {
	v, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode approval request: %w", err)
	}
	key := s.keys.Approval(a.ID)
	now := time.Now()
	_, err = s.rc.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SetNX(ctx, key, v, s.ttl(a, now))
		p.ZAdd(ctx, s.keys.Approvals(), redis.Z{Score: float64(a.RequestedAt.UnixMilli()), Member: a.ID})
		return nil
	})
	if err != nil {
		return fmt.Errorf("store approval request %s: %w", a.ID, err)
	}
	return nil
}

// Get returns the request id.
func (s *Store) Get(ctx context.Context, id string) (api.Approval, error) {
	v, err := s.rc.Get(ctx, s.keys.Approval(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return api.Approval{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if err != nil {
		return api.Approval{}, fmt.Errorf("read approval request %s: %w", id, err)
	}
	var a api.Approval
	if err := json.Unmarshal(v, &a); err != nil {
		return api.Approval{}, fmt.Errorf("decode approval request %s: %w", id, err)
	}
	return a, nil
}

// List returns up to limit requests, newest first, with their status at
// now and without their payloads. It drops from the index the requests
// whose records expired.
func (s *Store) List(ctx context.Context, limit int, now time.Time) ([]api.Approval, error) {
	out := []api.Approval{}
	for start := int64(0); len(out) < limit; {
		ids, err := s.rc.ZRevRange(ctx, s.keys.Approvals(), start, start+int64(limit)-1).Result()
		if err != nil {
			return nil, fmt.Errorf("list approval requests: %w", err)
		}
		if len(ids) == 0 {
			break
		}
		start += int64(len(ids))
		keys := make([]string, len(ids))
		for i, id := range ids {
			keys[i] = s.keys.Approval(id)
		}
		vals, err := s.rc.MGet(ctx, keys...).Result()
		if err != nil {
			return nil, fmt.Errorf("read approval requests: %w", err)
		}
		var gone []any
		for i, v := range vals {
			str, ok := v.(string)
			if !ok {
				gone = append(gone, ids[i])
				continue
			}
			var a api.Approval
			if err := json.Unmarshal([]byte(str), &a); err != nil {
				continue
			}
			a.Status = Status(a, now)
			a.Payload, a.Result = nil, nil
			out = append(out, a)
			if len(out) == limit {
				break
			}
		}
		if len(gone) > 0 {
			if err := s.rc.ZRem(ctx, s.keys.Approvals(), gone...).Err(); err != nil {
				return nil, fmt.Errorf("drop expired approval requests: %w", err)
			}
			start -= int64(len(gone))
		}
	}
	return out, nil
}

// updateTries bounds the attempts of Update when other writers change the
// same request meanwhile.
const updateTries = 5

// Update changes the request id with fn atomically: fn sees the stored
// request and returns the new one, or an error that leaves it unchanged
// and is returned. A concurrent change of the same request makes Update
// read it again and call fn again.
func (s *Store) Update(ctx context.Context, id string, fn func(api.Approval) (api.Approval, error)) (api.Approval, error) {
	key := s.keys.Approval(id)
	var out api.Approval
	for try := 0; try < updateTries; try++ {
		err := s.rc.Watch(ctx, func(tx *redis.Tx) error {
			v, err := tx.Get(ctx, key).Bytes()
			if errors.Is(err, redis.Nil) {
				return fmt.Errorf("%w: %q", ErrNotFound, id)
			}
			if err != nil {
				return fmt.Errorf("read approval request %s: %w", id, err)
			}
			var a api.Approval
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("decode approval request %s: %w", id, err)
			}
			b, err := fn(a)
			if err != nil {
				return err
			}
			nv, err := json.Marshal(b)
			if err != nil {
				return fmt.Errorf("encode approval request: %w", err)
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, key, nv, s.ttl(b, time.Now()))
				if !b.RequestedAt.Equal(a.RequestedAt) {
					p.ZAdd(ctx, s.keys.Approvals(), redis.Z{Score: float64(b.RequestedAt.UnixMilli()), Member: id})
				}
				return nil
			})
			if err != nil {
				return err
			}
			out = b
			return nil
		}, key)
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		if err != nil {
			return api.Approval{}, err
		}
		return out, nil
	}
	return api.Approval{}, fmt.Errorf("update approval request %s: changed by others %d times in a row", id, updateTries)
}

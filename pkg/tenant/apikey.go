package tenant

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/pkg/auth"
)

// APIKeyPrefix starts every API key secret, so that leaked keys are easy to
// recognise (and to scan for).
const APIKeyPrefix = "tdm_"

// APIKey is an integration's credential for one company. The secret itself
// is shown once, by CreateAPIKey, and stored only as its hash.
type APIKey struct {
	ID        string    `json:"id"`
	Company   string    `json:"company"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	Revoked   bool      `json:"revoked,omitempty"`
}

// apiKeyRecord is what the API key bucket holds.
type apiKeyRecord struct {
	APIKey
	SecretHash string `json:"secret_hash"` // auth.HashToken(secret)
}

// secretRef is the value of an "api." entry in the secrets bucket.
type secretRef struct {
	Company string `json:"company"`
	ID      string `json:"id"`
}

func apiSecretKey(hash string) string { return "api." + hash }

// CreateAPIKey makes a new API key for an existing company (ErrNotFound
// otherwise) and returns it with its secret, APIKeyPrefix followed by a
// 256-bit token. The secret cannot be read back later.
func (s *Store) CreateAPIKey(ctx context.Context, company, name string) (APIKey, string, error) {
	return s.createAPIKey(ctx, company, name, APIKeyPrefix+auth.NewToken())
}

// ImportAPIKey stores a key whose secret the operator chose (the demo's
// --demo-api-key). The secret must start with APIKeyPrefix and carry at
// least 24 more characters (ErrInvalid). Importing a secret that is stored
// already for the same company is not an error; for another company it is
// ErrExists.
func (s *Store) ImportAPIKey(ctx context.Context, company, name, secret string) error {
	rest, ok := strings.CutPrefix(secret, APIKeyPrefix)
	if !ok || len(rest) < 24 || len(secret) > 200 {
		return fmt.Errorf("import API key: %w: the key must be %q followed by 24 to 196 characters", ErrInvalid, APIKeyPrefix)
	}
	if k, err := s.LookupAPIKey(ctx, secret); err == nil {
		if k.Company != company {
			return fmt.Errorf("import API key: %w", ErrExists)
		}
		return nil
	}
	_, _, err := s.createAPIKey(ctx, company, name, secret)
	return err
}

func (s *Store) createAPIKey(ctx context.Context, company, name, secret string) (APIKey, string, error) {
	if _, err := s.GetCompany(ctx, company); err != nil {
		return APIKey{}, "", fmt.Errorf("create API key: %w", err)
	}
	if name = strings.TrimSpace(name); name == "" || len(name) > 200 {
		return APIKey{}, "", fmt.Errorf("create API key: %w: name must be 1 to 200 bytes", ErrInvalid)
	}
	rec := apiKeyRecord{
		APIKey:     APIKey{ID: auth.NewID("k_"), Company: company, Name: name, CreatedAt: s.now().UTC()},
		SecretHash: auth.HashToken(secret),
	}
	recRev, err := createJSON(ctx, s.apiKeys, objKey(company, rec.ID), rec)
	if err != nil {
		return APIKey{}, "", fmt.Errorf("create API key: %w", err)
	}
	if _, err := createJSON(ctx, s.secrets, apiSecretKey(rec.SecretHash), secretRef{Company: company, ID: rec.ID}); err != nil {
		if perr := purge(ctx, s.apiKeys, objKey(company, rec.ID), recRev); perr != nil {
			s.log.Warn("remove half-made API key", zap.String("company_id", company), zap.Error(perr))
		}
		return APIKey{}, "", fmt.Errorf("create API key: index: %w", err)
	}
	s.log.Info("API key created", zap.String("company_id", company), zap.String("api_key_id", rec.ID))
	return rec.APIKey, secret, nil
}

// LookupAPIKey returns the key a secret belongs to. An unknown or revoked
// key, or one of a disabled company, is ErrNotFound.
func (s *Store) LookupAPIKey(ctx context.Context, secret string) (APIKey, error) {
	if !strings.HasPrefix(secret, APIKeyPrefix) {
		return APIKey{}, ErrNotFound
	}
	hash := auth.HashToken(secret)
	var ref secretRef
	if _, err := getJSON(ctx, s.secrets, apiSecretKey(hash), &ref); err != nil {
		return APIKey{}, fmt.Errorf("lookup API key: %w", err)
	}
	if !validSlug(ref.Company) || !validID(ref.ID) {
		return APIKey{}, fmt.Errorf("lookup API key: bad index entry: %w", ErrNotFound)
	}
	var rec apiKeyRecord
	if _, err := getJSON(ctx, s.apiKeys, objKey(ref.Company, ref.ID), &rec); err != nil {
		return APIKey{}, fmt.Errorf("lookup API key: %w", err)
	}
	if rec.Revoked || subtle.ConstantTimeCompare([]byte(rec.SecretHash), []byte(hash)) != 1 {
		return APIKey{}, fmt.Errorf("lookup API key: revoked: %w", ErrNotFound)
	}
	if _, err := s.activeCompany(ctx, rec.Company); err != nil {
		return APIKey{}, fmt.Errorf("lookup API key: %w", err)
	}
	return rec.APIKey, nil
}

// GetAPIKey returns a key of company (revoked or not), without its secret,
// or ErrNotFound.
func (s *Store) GetAPIKey(ctx context.Context, company, id string) (APIKey, error) {
	if !validSlug(company) || !validID(id) {
		return APIKey{}, ErrNotFound
	}
	var rec apiKeyRecord
	if _, err := getJSON(ctx, s.apiKeys, objKey(company, id), &rec); err != nil {
		return APIKey{}, fmt.Errorf("get API key %s: %w", id, err)
	}
	return rec.APIKey, nil
}

// ListAPIKeys returns the company's keys, revoked ones included, oldest
// first.
func (s *Store) ListAPIKeys(ctx context.Context, company string) ([]APIKey, error) {
	if !validSlug(company) {
		return nil, nil
	}
	recs, err := listJSON[apiKeyRecord](ctx, s.streamOf(s.apiKeys), s.apiKeys, company+".*")
	if err != nil {
		return nil, err
	}
	keys := make([]APIKey, len(recs))
	for i, r := range recs {
		keys[i] = r.APIKey
	}
	slices.SortFunc(keys, func(a, b APIKey) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return keys, nil
}

// RevokeAPIKey revokes a key of company at once; its secret stops working.
// Revoking a revoked key is not an error; an unknown one is ErrNotFound.
func (s *Store) RevokeAPIKey(ctx context.Context, company, id string) error {
	if !validSlug(company) || !validID(id) {
		return ErrNotFound
	}
	var changed bool
	rec, err := updateJSON(ctx, s.apiKeys, objKey(company, id), func(r *apiKeyRecord) error {
		if changed = !r.Revoked; !changed {
			return errNoChange
		}
		r.Revoked = true
		return nil
	})
	if err != nil {
		return fmt.Errorf("revoke API key %s: %w", id, err)
	}
	if !changed {
		return nil
	}
	// The record now says revoked, which LookupAPIKey checks; removing the
	// index entry only tidies up.
	if err := purge(ctx, s.secrets, apiSecretKey(rec.SecretHash), 0); err != nil && !errors.Is(err, ErrNotFound) {
		s.log.Warn("remove revoked API key's index entry", zap.String("company_id", company), zap.String("api_key_id", id), zap.Error(err))
	}
	s.log.Info("API key revoked", zap.String("company_id", company), zap.String("api_key_id", id))
	return nil
}

package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/jumdata"
	"github.com/fapiaohub/invoicer/providers/nuonuo"
	"github.com/nats-io/nats.go/jetstream"
)

// Compile-time checks that the adapters satisfy the contracts the wiring
// relies on.
var (
	_ providers.Provider = (*nuonuo.Client)(nil)
	_ providers.Provider = (*jumdata.Client)(nil)
	_ pipeline.Store     = (*storeDB)(nil)
)

// buildProviders creates one client per configured seller. They share one
// HTTP client (one connection pool sized to the workers) and, per Nuonuo
// app, one token source whose token lives in a JetStream KV bucket shared
// by every instance.
func buildProviders(ctx context.Context, cfg *fileConfig, js jetstream.JetStream, o *options, client *http.Client, obs providers.Observer) (pipeline.ProviderMap, error) {
	httpCfg := providers.HTTPConfig{Timeout: o.providerTO, MaxConns: o.workers}
	owner := instanceName()
	var tokenStore nuonuo.TokenStore
	tokenSources := map[string]*nuonuo.TokenSource{}
	out := pipeline.ProviderMap{}
	for _, s := range cfg.Sellers {
		lim := providers.NewLimiter(providers.LimiterConfig{Rate: s.RateLimit})
		switch s.Provider {
		case "nuonuo":
			n := s.Nuonuo
			c := nuonuo.Config{
				BaseURL: n.BaseURL, SellerTaxNum: s.TaxNum, AppKey: n.AppKey, AppSecret: n.AppSecret,
				AccessToken: n.AccessToken, Family: n.Family, HTTPClient: client, HTTP: httpCfg, Limiter: lim, Observer: obs,
			}
			if n.AccessToken == "" {
				tokenURL := n.tokenEndpoint()
				id := tokenURL + "|" + n.AppKey
				ts := tokenSources[id]
				if ts == nil {
					if tokenStore == nil {
						kv, err := openTokenStore(ctx, js, o.replicas)
						if err != nil {
							return nil, err
						}
						tokenStore = kv
					}
					var err error
					ts, err = nuonuo.NewTokenSource(nuonuo.TokenSourceConfig{
						TokenURL: tokenURL, AppKey: n.AppKey, AppSecret: n.AppSecret, Store: tokenStore,
						HTTPClient: client, Observer: obs, Owner: owner,
					})
					if err != nil {
						return nil, fmt.Errorf("seller %s: %w", s.TaxNum, err)
					}
					tokenSources[id] = ts
				}
				c.Tokens = ts
			}
			p, err := nuonuo.New(c)
			if err != nil {
				return nil, fmt.Errorf("seller %s: %w", s.TaxNum, err)
			}
			out[s.TaxNum] = p
		case "jumdata":
			j := s.Jumdata
			p, err := jumdata.New(jumdata.Config{
				BaseURL: j.BaseURL, AppID: j.AppID, AppSecret: j.AppSecret, Token: j.Token,
				SellerTaxNum: s.TaxNum, DQ: j.DQ, Gryhm: j.Gryhm,
				HTTPClient: client, HTTP: httpCfg, Limiter: lim, Observer: obs,
			})
			if err != nil {
				return nil, fmt.Errorf("seller %s: %w", s.TaxNum, err)
			}
			out[s.TaxNum] = p
		}
	}
	return out, nil
}

// instanceName names this process in token leases.
func instanceName() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d-%d", host, os.Getpid(), time.Now().UnixNano()%1e6)
}

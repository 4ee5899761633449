// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	clientcmdv1 "k8s.io/client-go/tools/clientcmd/api/v1"
	"sigs.k8s.io/yaml"
)

// newKubeconfig prints a kubeconfig for kubectl and client-go: they cannot
// use the daemon's unix socket, so it names the TCP address (--server),
// the bearer token (--token-file) and, for https, the certificate
// authority that signed the daemon's certificate.
func newKubeconfig(g *globals) *cobra.Command {
	var name, ca string
	var embed bool
	cmd := &cobra.Command{
		Use:   "kubeconfig [--server URL] [--token-file FILE] [--certificate-authority FILE] [--name NAME] [--embed]",
		Short: "Print a kubeconfig with which kubectl and client-go reach the daemon over TCP",
		Long: `Print a kubeconfig with which kubectl and client-go reach the daemon over TCP.

kubectl sends the bearer token only over https: give the daemon
--tls-cert-file and --tls-key-file, and this command the certificate
authority that signed them (or the self-signed certificate itself). The
token and the certificate are referred to by path, or copied in with
--embed. Reads need no token when the daemon has no --fleet-read-token-file.`,
		Example: `  reconcilectl kubeconfig --server https://web1:9470 --token-file /etc/reconciled/token \
    --certificate-authority /etc/reconciled/ca.crt --name web1 > ~/.kube/web1
  KUBECONFIG=~/.kube/web1 kubectl get processes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			server := g.server
			if server == "" {
				server = "http://127.0.0.1:9470" // the daemon's default --listen
			}
			u, err := url.Parse(server)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("--server %q: want http://HOST:PORT or https://HOST:PORT", server)
			}
			if name == "" {
				name = u.Hostname()
			}
			cluster := clientcmdv1.Cluster{Server: server}
			if ca != "" {
				if u.Scheme != "https" {
					return fmt.Errorf("--certificate-authority is for an https --server")
				}
				if err := refer(ca, embed, &cluster.CertificateAuthority, &cluster.CertificateAuthorityData); err != nil {
					return fmt.Errorf("--certificate-authority: %w", err)
				}
			}
			var user clientcmdv1.AuthInfo
			if g.tokenFile != "" {
				if u.Scheme != "https" {
					fmt.Fprintln(cmd.ErrOrStderr(), "warning: kubectl sends no token over http: writes will be refused; use https (--tls-cert-file on the daemon)")
				}
				var token []byte
				if err := refer(g.tokenFile, embed, &user.TokenFile, &token); err != nil {
					return fmt.Errorf("--token-file: %w", err)
				}
				user.Token = strings.TrimSpace(string(token))
			}
			cfg := clientcmdv1.Config{
				Kind: "Config", APIVersion: "v1",
				Clusters:       []clientcmdv1.NamedCluster{{Name: name, Cluster: cluster}},
				AuthInfos:      []clientcmdv1.NamedAuthInfo{{Name: name, AuthInfo: user}},
				Contexts:       []clientcmdv1.NamedContext{{Name: name, Context: clientcmdv1.Context{Cluster: name, AuthInfo: name}}},
				CurrentContext: name,
			}
			b, err := yaml.Marshal(cfg)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "name of the cluster, user and context (default: the server's host)")
	cmd.Flags().StringVar(&ca, "certificate-authority", "", "PEM file of the authority that signed the daemon's certificate (https)")
	cmd.Flags().BoolVar(&embed, "embed", false, "copy the token and the certificate into the kubeconfig instead of naming their files")
	return cmd
}

// refer names file by its absolute path in *path, or with embed copies its
// content into *data; the file must be readable either way.
func refer(file string, embed bool, path *string, data *[]byte) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if embed {
		*data = b
		return nil
	}
	*path, err = filepath.Abs(file)
	return err
}

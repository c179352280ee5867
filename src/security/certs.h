// The cluster's own certificate authority, made with OpenSSL: a CA, and per
// node a key and certificate valid for both TLS server and client use (etcd's
// gateway needs both), with the node's address in subjectAltName.
#pragma once

#include <string>
#include <vector>

#include "core/error.h"

namespace bulwark {

// Writes DIR/ca.crt and DIR/ca.key (0600). Fails if they exist.
Status create_ca(const std::string& dir, const std::string& cluster_name);
// Writes DIR/NAME.crt and DIR/NAME.key (0600), signed by DIR/ca.key.
// `addresses` are IP literals put in subjectAltName.
Status issue_node_certificate(const std::string& dir, const std::string& name,
                              const std::vector<std::string>& addresses);
// Checks that a certificate and its key are readable PEM.
Status check_certificate_files(const std::string& cert_file, const std::string& key_file);

}  // namespace bulwark

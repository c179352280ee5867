#include "security/certs.h"

#include <fcntl.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "security/crypto.h"

namespace bulwark {
namespace {

namespace fs = std::filesystem;

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using PKey = std::unique_ptr<EVP_PKEY, Free>;
using Cert = std::unique_ptr<X509, Free>;
using File = std::unique_ptr<std::FILE, Free>;

constexpr int kCaDays = 3650;
constexpr int kNodeDays = 825;

std::string ssl_error(const std::string& what) {
  char buf[256];
  ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
  return what + ": " + buf;
}

PKey new_key() { return PKey(EVP_EC_gen("P-256")); }

File open_for_write(const std::string& path, int mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return nullptr;
  return File(::fdopen(fd, "w"));
}

Status write_key(const std::string& path, EVP_PKEY* key) {
  File f = open_for_write(path, 0600);
  if (!f || PEM_write_PrivateKey(f.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return make_error(Errc::kIo, "cannot write " + path);
  return Ok{};
}

Status write_cert(const std::string& path, X509* cert) {
  File f = open_for_write(path, 0644);
  if (!f || PEM_write_X509(f.get(), cert) != 1)
    return make_error(Errc::kIo, "cannot write " + path);
  return Ok{};
}

bool add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (!ext) return false;
  const bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

Cert new_cert(const std::string& cn, EVP_PKEY* key, int days) {
  Cert cert(X509_new());
  X509_set_version(cert.get(), 2);
  // A random 63-bit serial: unique enough for one cluster's CA.
  ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert.get()), random_u64() >> 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(days) * 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("bulwark"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  return cert;
}

template <class T, class Fn>
std::unique_ptr<T, Free> read_pem(const std::string& path, Fn fn) {
  File f(std::fopen(path.c_str(), "r"));
  if (!f) return nullptr;
  return std::unique_ptr<T, Free>(fn(f.get(), nullptr, nullptr, nullptr));
}

}  // namespace

Status create_ca(const std::string& dir, const std::string& cluster_name) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return make_error(Errc::kIo, "cannot create " + dir + ": " + ec.message());
  if (fs::exists(dir + "/ca.key"))
    return make_error(Errc::kInvalid, dir + "/ca.key already exists");
  PKey key = new_key();
  if (!key) return make_error(Errc::kIo, ssl_error("key generation"));
  Cert cert = new_cert("bulwark CA " + cluster_name, key.get(), kCaDays);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()));
  if (!add_ext(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
      !add_ext(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign") ||
      !add_ext(cert.get(), cert.get(), NID_subject_key_identifier, "hash"))
    return make_error(Errc::kIo, ssl_error("CA extensions"));
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0)
    return make_error(Errc::kIo, ssl_error("CA signature"));
  if (auto st = write_key(dir + "/ca.key", key.get()); !st) return st;
  return write_cert(dir + "/ca.crt", cert.get());
}

Status issue_node_certificate(const std::string& dir, const std::string& name,
                              const std::vector<std::string>& addresses) {
  auto ca_key = read_pem<EVP_PKEY>(dir + "/ca.key", PEM_read_PrivateKey);
  auto ca_cert = read_pem<X509>(dir + "/ca.crt", PEM_read_X509);
  if (!ca_key || !ca_cert)
    return make_error(Errc::kInvalid, dir + ": cannot read ca.crt and ca.key (run bulwark init)");
  PKey key = new_key();
  if (!key) return make_error(Errc::kIo, ssl_error("key generation"));
  Cert cert = new_cert(name, key.get(), kNodeDays);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert.get()));
  std::string san = "DNS:" + name;
  for (const auto& a : addresses) san += ",IP:" + a;
  if (!add_ext(cert.get(), ca_cert.get(), NID_basic_constraints, "critical,CA:FALSE") ||
      !add_ext(cert.get(), ca_cert.get(), NID_key_usage,
               "critical,digitalSignature,keyEncipherment") ||
      !add_ext(cert.get(), ca_cert.get(), NID_ext_key_usage, "serverAuth,clientAuth") ||
      !add_ext(cert.get(), ca_cert.get(), NID_subject_alt_name, san) ||
      !add_ext(cert.get(), ca_cert.get(), NID_authority_key_identifier, "keyid:always"))
    return make_error(Errc::kIo, ssl_error("certificate extensions"));
  if (X509_sign(cert.get(), ca_key.get(), EVP_sha256()) == 0)
    return make_error(Errc::kIo, ssl_error("certificate signature"));
  if (auto st = write_key(dir + "/" + name + ".key", key.get()); !st) return st;
  return write_cert(dir + "/" + name + ".crt", cert.get());
}

Status check_certificate_files(const std::string& cert_file, const std::string& key_file) {
  if (!read_pem<X509>(cert_file, PEM_read_X509))
    return make_error(Errc::kInvalid, cert_file + ": missing or not a PEM certificate");
  if (!read_pem<EVP_PKEY>(key_file, PEM_read_PrivateKey))
    return make_error(Errc::kInvalid, key_file + ": missing or not a PEM private key");
  return Ok{};
}

}  // namespace bulwark

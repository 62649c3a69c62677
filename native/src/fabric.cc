// The fabric part of the dinomo addon: libfabric one-sided access to a DPM region in another process.
//
//   FabricServer (DPM side)   opens an RDM endpoint, registers the region once per KN thread
//                             (grant: one key per rank and incarnation; revoke closes it: fencing),
//                             and drives progress on a native thread. The providers here (shm,
//                             tcp;ofi_rxm) make the target's progress manual: without that thread no
//                             one-sided operation of any KN would ever complete.
//   FabricEndpoint (KN side)  one endpoint per KN thread: connect to a server address with a key,
//                             then synchronous read, write, 8-byte atomic read/write, compare-and-swap
//                             and fetch-and-add; each posts one operation and spins on the completion
//                             queue until it completes, fails, or its deadline passes.
//
// Every access is bounds-checked here before it is posted: a bad remote access does not come back as
// an error on these providers; it kills the connection (tcp) or hangs the endpoint (shm). Any failed or
// timed-out operation marks the endpoint broken; it stays broken (every call throws) until reset() and
// connect() build a new one. Errors carry a stable `code`: FABRIC_BOUNDS, FABRIC_BROKEN,
// FABRIC_TIMEOUT, FABRIC_IO, FABRIC_SETUP, FABRIC_ARGS.
//
// Like the pmem part this uses the V8 API (the server registers a SharedArrayBuffer's own memory,
// which Node-API cannot reach on Node 20); it is rebuilt for each Node major.
#include <node.h>
#include <node_object_wrap.h>
#include <v8.h>

#include <rdma/fabric.h>
#include <rdma/fi_atomic.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>

#include "shm-names.h"

#include <sched.h>
#include <time.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using v8::ArrayBufferView;
using v8::BigInt;
using v8::Context;
using v8::FunctionCallbackInfo;
using v8::FunctionTemplate;
using v8::Isolate;
using v8::Local;
using v8::Object;
using v8::SharedArrayBuffer;
using v8::String;
using v8::Value;

// ---------------------------------------------------------------------------------------------
// Errors and argument helpers

void ThrowCode(Isolate* isolate, const char* code, const std::string& message) {
  Local<Context> context = isolate->GetCurrentContext();
  Local<Value> error =
      v8::Exception::Error(String::NewFromUtf8(isolate, message.c_str()).ToLocalChecked());
  error.As<Object>()
      ->Set(context, String::NewFromUtf8Literal(isolate, "code"),
            String::NewFromUtf8(isolate, code).ToLocalChecked())
      .Check();
  isolate->ThrowException(error);
}

std::string FiText(const char* what, int rc) {
  return std::string(what) + " failed: " + fi_strerror(rc < 0 ? -rc : rc) + " (" +
         std::to_string(rc) + ")";
}

bool ToU64(Local<Value> value, uint64_t* out) {
  if (value->IsBigInt()) {
    bool lossless = true;
    *out = value.As<BigInt>()->Uint64Value(&lossless);
    return lossless;
  }
  if (value->IsNumber()) {
    const double d = value.As<v8::Number>()->Value();
    if (!(d >= 0) || d > 9007199254740991.0 || d != static_cast<double>(static_cast<uint64_t>(d)))
      return false;
    *out = static_cast<uint64_t>(d);
    return true;
  }
  return false;
}

bool ToSize(Local<Value> value, size_t* out) {
  uint64_t v = 0;
  if (!value->IsNumber() || !ToU64(value, &v)) return false;
  *out = static_cast<size_t>(v);
  return true;
}

// The bytes of a Uint8Array (or any view), whether over an ArrayBuffer or a SharedArrayBuffer.
uint8_t* ViewData(Local<Value> value, size_t* length) {
  Local<ArrayBufferView> view = value.As<ArrayBufferView>();
  *length = view->ByteLength();
  Local<Value> buffer = view->Buffer();
  uint8_t* base = buffer->IsSharedArrayBuffer()
                      ? static_cast<uint8_t*>(buffer.As<SharedArrayBuffer>()->Data())
                      : static_cast<uint8_t*>(buffer.As<v8::ArrayBuffer>()->Data());
  return base + view->ByteOffset();
}

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// ---------------------------------------------------------------------------------------------
// One endpoint with its fabric, domain, completion queue and address vector.

struct Resources {
  fi_info* info = nullptr;
  fid_fabric* fabric = nullptr;
  fid_domain* domain = nullptr;
  fid_cq* cq = nullptr;
  fid_av* av = nullptr;
  fid_ep* ep = nullptr;
  uint64_t mrMode = 0;
  bool atomics = false;
  // shm only: our own segment name, so that a dead process's segment never blocks a new one.
  dinomo::ShmEndpointName shmName;

  void CloseEndpoint() {
    if (ep != nullptr) fi_close(&ep->fid);
    if (av != nullptr) fi_close(&av->fid);
    if (cq != nullptr) fi_close(&cq->fid);
    ep = nullptr;
    av = nullptr;
    cq = nullptr;
  }

  void Close() {
    CloseEndpoint();
    if (domain != nullptr) fi_close(&domain->fid);
    if (fabric != nullptr) fi_close(&fabric->fid);
    if (info != nullptr) fi_freeinfo(info);
    domain = nullptr;
    fabric = nullptr;
    info = nullptr;
    mrMode = 0;
    atomics = false;
    // After the endpoint's close, which unlinked its segment.
    shmName.Release();
  }
};

// Opens the completion queue, address vector and endpoint on an open domain, and enables them.
bool OpenEndpoint(Resources* r, std::string* error) {
  fi_cq_attr cqAttr{};
  cqAttr.format = FI_CQ_FORMAT_CONTEXT;
  cqAttr.wait_obj = FI_WAIT_NONE;
  cqAttr.size = 64;
  fi_av_attr avAttr{};
  avAttr.type = FI_AV_TABLE;
  const char* what = "fi_cq_open";
  int step = fi_cq_open(r->domain, &cqAttr, &r->cq, nullptr);
  if (step == 0) {
    what = "fi_av_open";
    step = fi_av_open(r->domain, &avAttr, &r->av, nullptr);
  }
  if (step == 0) {
    what = "fi_endpoint";
    step = fi_endpoint(r->domain, r->info, &r->ep, nullptr);
  }
  if (step == 0) {
    what = "fi_ep_bind(cq)";
    step = fi_ep_bind(r->ep, &r->cq->fid, FI_TRANSMIT | FI_RECV);
  }
  if (step == 0) {
    what = "fi_ep_bind(av)";
    step = fi_ep_bind(r->ep, &r->av->fid, 0);
  }
  if (step == 0) {
    what = "fi_enable";
    step = fi_enable(r->ep);
  }
  if (step != 0) {
    *error = FiText(what, step);
    r->CloseEndpoint();
    return false;
  }
  return true;
}

// provider: "shm" or "tcp" (which means tcp;ofi_rxm). TCP endpoints bind 127.0.0.1 unless `host`
// names another address: without a source address the tcp provider binds the first interface.
bool OpenResources(const std::string& provider, const std::string& host, Resources* r,
                   std::string* error) {
  const bool tcp = provider == "tcp";
  if (!tcp && provider != "shm") {
    *error = "provider must be 'shm' or 'tcp', not '" + provider + "'";
    return false;
  }
  fi_info* hints = fi_allocinfo();
  hints->ep_attr->type = FI_EP_RDM;
  hints->caps = FI_RMA | FI_ATOMIC | FI_READ | FI_WRITE | FI_REMOTE_READ | FI_REMOTE_WRITE;
  hints->mode = FI_CONTEXT | FI_CONTEXT2;
  // Every mode we can handle; real NICs (verbs, efa) need LOCAL, PROV_KEY and ENDPOINT.
  hints->domain_attr->mr_mode =
      FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_PROV_KEY | FI_MR_ENDPOINT;
  hints->domain_attr->threading = FI_THREAD_SAFE;
  hints->fabric_attr->prov_name = strdup(tcp ? "tcp;ofi_rxm" : "shm");
  if (!tcp && !r->shmName.Acquire(error)) {
    fi_freeinfo(hints);
    return false;
  }
  // shm: the node names the endpoint's segment (see shm-names.h).
  const char* node = tcp ? host.c_str() : r->shmName.tag().c_str();
  const char* service = tcp ? "0" : nullptr;
  const int rc = fi_getinfo(FI_VERSION(1, 17), node, service, FI_SOURCE, hints, &r->info);
  fi_freeinfo(hints);
  if (rc != 0) {
    *error = FiText("fi_getinfo", rc) +
             (rc == -FI_ENODATA ? " (no such provider here; is FI_PROVIDER set?)" : "");
    r->info = nullptr;
    r->shmName.Release();
    return false;
  }
  r->mrMode = r->info->domain_attr->mr_mode;
  // fi_query_atomic on an endpoint opened without FI_ATOMIC crashes (NULL ops table): check first.
  r->atomics = (r->info->caps & FI_ATOMIC) != 0;
  int step = fi_fabric(r->info->fabric_attr, &r->fabric, nullptr);
  if (step == 0) step = fi_domain(r->fabric, r->info, &r->domain, nullptr);
  if (step != 0) {
    *error = FiText("opening the fabric and domain", step);
    r->Close();
    return false;
  }
  if (!OpenEndpoint(r, error)) {
    r->Close();
    return false;
  }
  return true;
}

// Registers [data, data + bytes) with `access`; binds it to the endpoint where the provider wants that.
int RegisterMemory(Resources* r, void* data, size_t bytes, uint64_t access, uint64_t requestedKey,
                   fid_mr** mr) {
  int rc = fi_mr_reg(r->domain, data, bytes, access, 0, requestedKey, 0, mr, nullptr);
  if (rc != 0) return rc;
  if ((r->mrMode & FI_MR_ENDPOINT) != 0) {
    rc = fi_mr_bind(*mr, &r->ep->fid, 0);
    if (rc == 0) rc = fi_mr_enable(*mr);
    if (rc != 0) {
      fi_close(&(*mr)->fid);
      *mr = nullptr;
    }
  }
  return rc;
}

Local<Object> DescribeResources(Isolate* isolate, const Resources& r) {
  Local<Context> context = isolate->GetCurrentContext();
  Local<Object> out = Object::New(isolate);
  char name[256];
  size_t nameBytes = sizeof(name);
  if (fi_getname(&r.ep->fid, name, &nameBytes) != 0) nameBytes = 0;
  std::shared_ptr<v8::BackingStore> store = v8::ArrayBuffer::NewBackingStore(isolate, nameBytes);
  if (nameBytes > 0) std::memcpy(store->Data(), name, nameBytes);
  Local<v8::ArrayBuffer> nameBuffer = v8::ArrayBuffer::New(isolate, store);
  out->Set(context, String::NewFromUtf8Literal(isolate, "name"),
           v8::Uint8Array::New(nameBuffer, 0, nameBytes))
      .Check();
  out->Set(context, String::NewFromUtf8Literal(isolate, "provider"),
           String::NewFromUtf8(isolate, r.info->fabric_attr->prov_name).ToLocalChecked())
      .Check();
  out->Set(context, String::NewFromUtf8Literal(isolate, "mrMode"),
           v8::Number::New(isolate, static_cast<double>(r.mrMode)))
      .Check();
  out->Set(context, String::NewFromUtf8Literal(isolate, "atomics"),
           v8::Boolean::New(isolate, r.atomics))
      .Check();
  return out;
}

// ---------------------------------------------------------------------------------------------
// FabricServer: the DPM side.

class FabricServer : public node::ObjectWrap {
 public:
  static void Init(Isolate* isolate, Local<Object> exports);

 private:
  ~FabricServer() override { Shutdown(); }

  static void New(const FunctionCallbackInfo<Value>& args);
  static void Describe(const FunctionCallbackInfo<Value>& args);
  static void Grant(const FunctionCallbackInfo<Value>& args);
  static void Revoke(const FunctionCallbackInfo<Value>& args);
  static void Close(const FunctionCallbackInfo<Value>& args);

  void StartProgress() {
    running_ = true;
    progress_ = std::thread([this] { Progress(); });
  }

  void StopProgress() {
    if (running_.exchange(false) && progress_.joinable()) progress_.join();
  }

  void Progress() {
    fi_cq_entry entries[16];
    while (running_.load(std::memory_order_relaxed)) {
      fi_cq_read(r_.cq, entries, 16);
      // Yielding keeps a spinning progress thread from starving KN threads on a small machine; when a
      // core is free it costs nothing.
      if (yield_) sched_yield();
    }
  }

  void Shutdown() {
    StopProgress();
    std::lock_guard<std::mutex> lock(mrLock_);
    for (auto& [key, mr] : mrs_) {
      if (mr != nullptr) fi_close(&mr->fid);
    }
    mrs_.clear();
    r_.Close();
    region_.reset();
  }

  Resources r_;
  std::shared_ptr<v8::BackingStore> region_;
  std::mutex mrLock_;
  std::map<uint64_t, fid_mr*> mrs_;
  std::atomic<bool> running_{false};
  bool yield_ = true;
  std::thread progress_;
};

// new FabricServer(provider: 'shm' | 'tcp', region: SharedArrayBuffer, host: string, yield: boolean)
void FabricServer::New(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  if (!args.IsConstructCall() || args.Length() < 4 || !args[0]->IsString() ||
      !args[1]->IsSharedArrayBuffer() || !args[2]->IsString() || !args[3]->IsBoolean()) {
    ThrowCode(isolate, "FABRIC_ARGS",
              "new FabricServer(provider, region, host, yield) needs a string, a "
              "SharedArrayBuffer, a string and a boolean");
    return;
  }
  String::Utf8Value provider(isolate, args[0]);
  String::Utf8Value host(isolate, args[2]);
  auto* server = new FabricServer();
  std::string error;
  if (!OpenResources(*provider, *host, &server->r_, &error)) {
    delete server;
    ThrowCode(isolate, "FABRIC_SETUP", error);
    return;
  }
  server->region_ = args[1].As<SharedArrayBuffer>()->GetBackingStore();
  server->yield_ = args[3]->IsTrue();
  server->Wrap(args.This());
  server->StartProgress();
  args.GetReturnValue().Set(args.This());
}

// describe(): { name, provider, mrMode, atomics, base } — base is the region's address for FI_MR_VIRT_ADDR
// providers (remote addresses are then base + offset) and 0 otherwise (offsets).
void FabricServer::Describe(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  auto* server = ObjectWrap::Unwrap<FabricServer>(args.This());
  if (server->r_.ep == nullptr) {
    ThrowCode(isolate, "FABRIC_BROKEN", "the fabric server is closed");
    return;
  }
  Local<Object> out = DescribeResources(isolate, server->r_);
  const uint64_t base = (server->r_.mrMode & FI_MR_VIRT_ADDR) != 0
                            ? reinterpret_cast<uint64_t>(server->region_->Data())
                            : 0;
  out->Set(isolate->GetCurrentContext(), String::NewFromUtf8Literal(isolate, "base"),
           BigInt::NewFromUnsigned(isolate, base))
      .Check();
  args.GetReturnValue().Set(out);
}

// grant(requestedKey: bigint): bigint — registers the whole region for remote read and write under a
// new key (the provider's own key when it insists on choosing) and returns the key.
void FabricServer::Grant(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  auto* server = ObjectWrap::Unwrap<FabricServer>(args.This());
  uint64_t requested = 0;
  if (args.Length() < 1 || !ToU64(args[0], &requested)) {
    ThrowCode(isolate, "FABRIC_ARGS", "grant(key) needs a non-negative integer key");
    return;
  }
  if (server->r_.ep == nullptr) {
    ThrowCode(isolate, "FABRIC_BROKEN", "the fabric server is closed");
    return;
  }
  std::lock_guard<std::mutex> lock(server->mrLock_);
  fid_mr* mr = nullptr;
  const int rc = RegisterMemory(&server->r_, server->region_->Data(), server->region_->ByteLength(),
                                FI_REMOTE_READ | FI_REMOTE_WRITE, requested, &mr);
  if (rc != 0) {
    ThrowCode(isolate, "FABRIC_SETUP", FiText("fi_mr_reg", rc));
    return;
  }
  const uint64_t key = fi_mr_key(mr);
  if (server->mrs_.count(key) != 0) {
    fi_close(&mr->fid);
    ThrowCode(isolate, "FABRIC_ARGS", "key " + std::to_string(key) + " is already granted");
    return;
  }
  server->mrs_[key] = mr;
  args.GetReturnValue().Set(BigInt::NewFromUnsigned(isolate, key));
}

// revoke(key: bigint): boolean — closes the registration; every later access with the key fails at
// the target and never touches the region. False when the key was not granted.
void FabricServer::Revoke(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  auto* server = ObjectWrap::Unwrap<FabricServer>(args.This());
  uint64_t key = 0;
  if (args.Length() < 1 || !ToU64(args[0], &key)) {
    ThrowCode(isolate, "FABRIC_ARGS", "revoke(key) needs a non-negative integer key");
    return;
  }
  std::lock_guard<std::mutex> lock(server->mrLock_);
  auto it = server->mrs_.find(key);
  if (it == server->mrs_.end()) {
    args.GetReturnValue().Set(false);
    return;
  }
  if (it->second != nullptr) fi_close(&it->second->fid);
  server->mrs_.erase(it);
  args.GetReturnValue().Set(true);
}

void FabricServer::Close(const FunctionCallbackInfo<Value>& args) {
  ObjectWrap::Unwrap<FabricServer>(args.This())->Shutdown();
}

void FabricServer::Init(Isolate* isolate, Local<Object> exports) {
  Local<Context> context = isolate->GetCurrentContext();
  Local<FunctionTemplate> tpl = FunctionTemplate::New(isolate, New);
  tpl->SetClassName(String::NewFromUtf8Literal(isolate, "FabricServer"));
  tpl->InstanceTemplate()->SetInternalFieldCount(1);
  NODE_SET_PROTOTYPE_METHOD(tpl, "describe", Describe);
  NODE_SET_PROTOTYPE_METHOD(tpl, "grant", Grant);
  NODE_SET_PROTOTYPE_METHOD(tpl, "revoke", Revoke);
  NODE_SET_PROTOTYPE_METHOD(tpl, "close", Close);
  exports
      ->Set(context, String::NewFromUtf8Literal(isolate, "FabricServer"),
            tpl->GetFunction(context).ToLocalChecked())
      .Check();
}

// ---------------------------------------------------------------------------------------------
// FabricEndpoint: the KN side.

enum class Op { kRead, kWrite, kRead64, kWrite64, kCas, kFaa };

class FabricEndpoint : public node::ObjectWrap {
 public:
  static void Init(Isolate* isolate, Local<Object> exports);

 private:
  ~FabricEndpoint() override { Teardown(); }

  static void New(const FunctionCallbackInfo<Value>& args);
  static void Describe(const FunctionCallbackInfo<Value>& args);
  static void Connect(const FunctionCallbackInfo<Value>& args);
  static void Reset(const FunctionCallbackInfo<Value>& args);
  static void Close(const FunctionCallbackInfo<Value>& args);
  static void Read(const FunctionCallbackInfo<Value>& args);
  static void Write(const FunctionCallbackInfo<Value>& args);
  static void Read64(const FunctionCallbackInfo<Value>& args);
  static void Write64(const FunctionCallbackInfo<Value>& args);
  static void Cas64(const FunctionCallbackInfo<Value>& args);
  static void Faa64(const FunctionCallbackInfo<Value>& args);
  static void Bench(const FunctionCallbackInfo<Value>& args);
  static void WordOp(const FunctionCallbackInfo<Value>& args, Op op, int operands,
                     const char* usage);

  bool Open(std::string* error);
  void Teardown();
  // Checks that the endpoint can take an operation on [offset, offset + length); throws otherwise.
  bool Ready(Isolate* isolate, uint64_t offset, uint64_t length, bool word);
  // Posts one operation and waits for its completion; 0, or a negative fi errno. The operand is in
  // words_[0] (and words_[1] for a CAS); a fetched word lands in words_[2].
  int Run(Op op, uint64_t offset, size_t length);
  int Post(Op op, uint64_t offset, size_t length);
  int Complete(uint64_t deadlineNs);
  // Throws the failure of Run and marks the endpoint broken.
  void Fail(Isolate* isolate, Op op, int rc);

  std::string provider_;
  std::string host_;
  size_t bounceBytes_ = 0;
  uint64_t timeoutNs_ = 0;
  Resources r_;
  fid_mr* bounceMr_ = nullptr;
  void* bounceDesc_ = nullptr;
  uint8_t* bounce_ = nullptr;  // bounceBytes_ for data, then 3 words for atomics
  fi_addr_t peer_ = FI_ADDR_UNSPEC;
  uint64_t key_ = 0;
  uint64_t base_ = 0;
  uint64_t regionBytes_ = 0;
  bool broken_ = false;
  bool atomicRead_ = false;
  bool atomicWrite_ = false;
  std::string brokenWhy_;
  fi_context2 context_{};
};

bool FabricEndpoint::Open(std::string* error) {
  if (!OpenResources(provider_, host_, &r_, error)) return false;
  bounce_ = static_cast<uint8_t*>(aligned_alloc(4096, bounceBytes_ + 4096));
  if (bounce_ == nullptr) {
    *error = "cannot allocate the bounce buffer";
    r_.Close();
    return false;
  }
  // The local buffer is registered whether or not the provider asks (FI_MR_LOCAL), so the path that
  // real NICs need is the one that runs here.
  const int rc = RegisterMemory(&r_, bounce_, bounceBytes_ + 4096,
                                FI_READ | FI_WRITE | FI_SEND | FI_RECV, 1, &bounceMr_);
  if (rc != 0) {
    *error = FiText("fi_mr_reg (local buffer)", rc);
    Teardown();
    return false;
  }
  bounceDesc_ = fi_mr_desc(bounceMr_);
  atomicRead_ = atomicWrite_ = false;
  if (r_.atomics) {
    size_t count = 0;
    atomicRead_ = fi_fetch_atomicvalid(r_.ep, FI_UINT64, FI_ATOMIC_READ, &count) == 0 && count > 0;
    atomicWrite_ = fi_atomicvalid(r_.ep, FI_UINT64, FI_ATOMIC_WRITE, &count) == 0 && count > 0;
    const bool cas = fi_compare_atomicvalid(r_.ep, FI_UINT64, FI_CSWAP, &count) == 0 && count > 0;
    const bool faa = fi_fetch_atomicvalid(r_.ep, FI_UINT64, FI_SUM, &count) == 0 && count > 0;
    if (!cas || !faa) r_.atomics = false;
  }
  if (!r_.atomics) {
    *error = "the provider offers no 64-bit compare-and-swap and fetch-and-add";
    Teardown();
    return false;
  }
  broken_ = true;
  brokenWhy_ = "not connected yet: call connect()";
  return true;
}

void FabricEndpoint::Teardown() {
  if (bounceMr_ != nullptr) fi_close(&bounceMr_->fid);
  bounceMr_ = nullptr;
  bounceDesc_ = nullptr;
  r_.Close();
  free(bounce_);
  bounce_ = nullptr;
  peer_ = FI_ADDR_UNSPEC;
  broken_ = true;
  brokenWhy_ = "the endpoint is closed";
}

bool FabricEndpoint::Ready(Isolate* isolate, uint64_t offset, uint64_t length, bool word) {
  if (broken_) {
    ThrowCode(isolate, "FABRIC_BROKEN", brokenWhy_);
    return false;
  }
  if (offset > regionBytes_ || length > regionBytes_ - offset) {
    ThrowCode(isolate, "FABRIC_BOUNDS",
              "access [" + std::to_string(offset) + ", " + std::to_string(offset + length) +
                  ") is outside the " + std::to_string(regionBytes_) + "-byte region");
    return false;
  }
  if (word && offset % 8 != 0) {
    ThrowCode(isolate, "FABRIC_BOUNDS",
              "8-byte access at unaligned offset " + std::to_string(offset));
    return false;
  }
  return true;
}

int FabricEndpoint::Post(Op op, uint64_t offset, size_t length) {
  const uint64_t addr = base_ + offset;
  uint64_t* words = reinterpret_cast<uint64_t*>(bounce_ + bounceBytes_);
  switch (op) {
    case Op::kRead:
      return static_cast<int>(
          fi_read(r_.ep, bounce_, length, bounceDesc_, peer_, addr, key_, &context_));
    case Op::kWrite:
      return static_cast<int>(
          fi_write(r_.ep, bounce_, length, bounceDesc_, peer_, addr, key_, &context_));
    case Op::kRead64:
      if (!atomicRead_)
        return static_cast<int>(
            fi_read(r_.ep, &words[2], 8, bounceDesc_, peer_, addr, key_, &context_));
      return static_cast<int>(fi_fetch_atomic(r_.ep, &words[0], 1, bounceDesc_, &words[2],
                                              bounceDesc_, peer_, addr, key_, FI_UINT64,
                                              FI_ATOMIC_READ, &context_));
    case Op::kWrite64:
      if (!atomicWrite_)
        return static_cast<int>(
            fi_write(r_.ep, &words[0], 8, bounceDesc_, peer_, addr, key_, &context_));
      return static_cast<int>(fi_atomic(r_.ep, &words[0], 1, bounceDesc_, peer_, addr, key_,
                                        FI_UINT64, FI_ATOMIC_WRITE, &context_));
    case Op::kCas:
      return static_cast<int>(fi_compare_atomic(r_.ep, &words[1], 1, bounceDesc_, &words[0],
                                                bounceDesc_, &words[2], bounceDesc_, peer_, addr,
                                                key_, FI_UINT64, FI_CSWAP, &context_));
    case Op::kFaa:
      return static_cast<int>(fi_fetch_atomic(r_.ep, &words[0], 1, bounceDesc_, &words[2],
                                              bounceDesc_, peer_, addr, key_, FI_UINT64, FI_SUM,
                                              &context_));
  }
  return -FI_EINVAL;
}

int FabricEndpoint::Complete(uint64_t deadlineNs) {
  fi_cq_entry entry;
  for (uint32_t spins = 1;; spins++) {
    const ssize_t n = fi_cq_read(r_.cq, &entry, 1);
    if (n == 1) return 0;
    if (n == -FI_EAVAIL) {
      fi_cq_err_entry err{};
      fi_cq_readerr(r_.cq, &err, 0);
      return err.err != 0 ? -err.err : -FI_EIO;
    }
    if (n != -FI_EAGAIN) return static_cast<int>(n);
    if ((spins & 1023) == 0 && NowNs() > deadlineNs) return -FI_ETIMEDOUT;
  }
}

int FabricEndpoint::Run(Op op, uint64_t offset, size_t length) {
  const uint64_t deadline = NowNs() + timeoutNs_;
  for (uint32_t spins = 1;; spins++) {
    const int rc = Post(op, offset, length);
    if (rc == 0) break;
    if (rc != -FI_EAGAIN) return rc;
    // The queue is full: completions (ours are all reaped) or progress free it.
    fi_cq_entry entry;
    fi_cq_read(r_.cq, &entry, 1);
    if ((spins & 1023) == 0 && NowNs() > deadline) return -FI_ETIMEDOUT;
  }
  return Complete(deadline);
}

void FabricEndpoint::Fail(Isolate* isolate, Op op, int rc) {
  static const char* const names[] = {"read", "write", "read64", "write64", "cas64", "faa64"};
  broken_ = true;
  const bool timeout = rc == -FI_ETIMEDOUT;
  brokenWhy_ = std::string("the endpoint broke: a ") + names[static_cast<int>(op)] +
               (timeout ? " did not complete in time (the DPM may be gone, or the key revoked)"
                        : std::string(" failed: ") + fi_strerror(-rc)) +
               "; reset() and connect() again";
  ThrowCode(isolate, timeout ? "FABRIC_TIMEOUT" : "FABRIC_IO", brokenWhy_);
}

// new FabricEndpoint(provider, host, bounceBytes, timeoutMs)
void FabricEndpoint::New(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  size_t bounce = 0;
  size_t timeoutMs = 0;
  if (!args.IsConstructCall() || args.Length() < 4 || !args[0]->IsString() ||
      !args[1]->IsString() || !ToSize(args[2], &bounce) || !ToSize(args[3], &timeoutMs) ||
      bounce < 64 || bounce % 8 != 0 || timeoutMs == 0) {
    ThrowCode(isolate, "FABRIC_ARGS",
              "new FabricEndpoint(provider, host, bounceBytes, timeoutMs) needs two strings, a "
              "bounce size (a multiple of 8, at least 64) and a positive timeout");
    return;
  }
  auto* endpoint = new FabricEndpoint();
  endpoint->provider_ = *String::Utf8Value(isolate, args[0]);
  endpoint->host_ = *String::Utf8Value(isolate, args[1]);
  endpoint->bounceBytes_ = bounce;
  endpoint->timeoutNs_ = static_cast<uint64_t>(timeoutMs) * 1000000ull;
  std::string error;
  if (!endpoint->Open(&error)) {
    delete endpoint;
    ThrowCode(isolate, "FABRIC_SETUP", error);
    return;
  }
  endpoint->Wrap(args.This());
  args.GetReturnValue().Set(args.This());
}

void FabricEndpoint::Describe(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  auto* self = ObjectWrap::Unwrap<FabricEndpoint>(args.This());
  if (self->r_.ep == nullptr) {
    ThrowCode(isolate, "FABRIC_BROKEN", self->brokenWhy_);
    return;
  }
  Local<Object> out = DescribeResources(isolate, self->r_);
  out->Set(isolate->GetCurrentContext(), String::NewFromUtf8Literal(isolate, "atomicWords"),
           v8::Boolean::New(isolate, self->atomicRead_ && self->atomicWrite_))
      .Check();
  args.GetReturnValue().Set(out);
}

// connect(name: Uint8Array, key: bigint, base: bigint, regionBytes: number)
void FabricEndpoint::Connect(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  auto* self = ObjectWrap::Unwrap<FabricEndpoint>(args.This());
  uint64_t key = 0;
  uint64_t base = 0;
  uint64_t bytes = 0;
  if (args.Length() < 4 || !args[0]->IsArrayBufferView() || !ToU64(args[1], &key) ||
      !ToU64(args[2], &base) || !ToU64(args[3], &bytes) || bytes == 0) {
    ThrowCode(isolate, "FABRIC_ARGS",
              "connect(name, key, base, regionBytes) needs a Uint8Array, two integers and a "
              "positive size");
    return;
  }
  if (self->r_.ep == nullptr) {
    ThrowCode(isolate, "FABRIC_BROKEN", "the endpoint is closed; reset() it first");
    return;
  }
  size_t nameBytes = 0;
  const uint8_t* name = ViewData(args[0], &nameBytes);
  std::vector<uint8_t> copy(name, name + nameBytes);
  if (self->peer_ != FI_ADDR_UNSPEC) {
    fi_av_remove(self->r_.av, &self->peer_, 1, 0);
    self->peer_ = FI_ADDR_UNSPEC;
  }
  fi_addr_t peer = FI_ADDR_UNSPEC;
  const int inserted = fi_av_insert(self->r_.av, copy.data(), 1, &peer, 0, nullptr);
  if (inserted != 1) {
    ThrowCode(isolate, "FABRIC_SETUP", FiText("fi_av_insert", inserted));
    return;
  }
  self->peer_ = peer;
  self->key_ = key;
  self->base_ = base;
  self->regionBytes_ = bytes;
  self->broken_ = false;
  self->brokenWhy_.clear();
}

// reset(): closes the endpoint and opens a fresh one (a broken shm endpoint never recovers); connect()
// follows.
void FabricEndpoint::Reset(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  auto* self = ObjectWrap::Unwrap<FabricEndpoint>(args.This());
  self->Teardown();
  std::string error;
  if (!self->Open(&error)) ThrowCode(isolate, "FABRIC_SETUP", error);
}

void FabricEndpoint::Close(const FunctionCallbackInfo<Value>& args) {
  ObjectWrap::Unwrap<FabricEndpoint>(args.This())->Teardown();
}

// read(offset, length, dst: Uint8Array, dstOffset)
void FabricEndpoint::Read(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  auto* self = ObjectWrap::Unwrap<FabricEndpoint>(args.This());
  uint64_t offset = 0;
  size_t length = 0;
  size_t dstOffset = 0;
  if (args.Length() < 4 || !ToU64(args[0], &offset) || !ToSize(args[1], &length) ||
      !args[2]->IsArrayBufferView() || !ToSize(args[3], &dstOffset)) {
    ThrowCode(isolate, "FABRIC_ARGS", "read(offset, length, dst, dstOffset) has bad arguments");
    return;
  }
  size_t dstBytes = 0;
  uint8_t* dst = ViewData(args[2], &dstBytes);
  if (dstOffset > dstBytes || length > dstBytes - dstOffset) {
    ThrowCode(isolate, "FABRIC_ARGS", "read: the destination is too small");
    return;
  }
  if (!self->Ready(isolate, offset, length, false)) return;
  for (size_t done = 0; done < length;) {
    const size_t chunk = std::min(length - done, self->bounceBytes_);
    const int rc = self->Run(Op::kRead, offset + done, chunk);
    if (rc != 0) return self->Fail(isolate, Op::kRead, rc);
    std::memcpy(dst + dstOffset + done, self->bounce_, chunk);
    done += chunk;
  }
}

// write(offset, src: Uint8Array, srcOffset, length)
void FabricEndpoint::Write(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  auto* self = ObjectWrap::Unwrap<FabricEndpoint>(args.This());
  uint64_t offset = 0;
  size_t srcOffset = 0;
  size_t length = 0;
  if (args.Length() < 4 || !ToU64(args[0], &offset) || !args[1]->IsArrayBufferView() ||
      !ToSize(args[2], &srcOffset) || !ToSize(args[3], &length)) {
    ThrowCode(isolate, "FABRIC_ARGS", "write(offset, src, srcOffset, length) has bad arguments");
    return;
  }
  size_t srcBytes = 0;
  const uint8_t* src = ViewData(args[1], &srcBytes);
  if (srcOffset > srcBytes || length > srcBytes - srcOffset) {
    ThrowCode(isolate, "FABRIC_ARGS", "write: the source is shorter than length");
    return;
  }
  if (!self->Ready(isolate, offset, length, false)) return;
  for (size_t done = 0; done < length;) {
    const size_t chunk = std::min(length - done, self->bounceBytes_);
    std::memcpy(self->bounce_, src + srcOffset + done, chunk);
    const int rc = self->Run(Op::kWrite, offset + done, chunk);
    if (rc != 0) return self->Fail(isolate, Op::kWrite, rc);
    done += chunk;
  }
}

#define WORDS(self) reinterpret_cast<uint64_t*>((self)->bounce_ + (self)->bounceBytes_)

// The four 8-byte operations share one shape: an offset, then `operands` bigints into words[0..]
// (the value; the expected and the desired word; the delta), then one posted operation (Post knows
// which word is which); a fetching operation returns words[2].
void FabricEndpoint::WordOp(const FunctionCallbackInfo<Value>& args, Op op, int operands,
                            const char* usage) {
  Isolate* isolate = args.GetIsolate();
  auto* self = ObjectWrap::Unwrap<FabricEndpoint>(args.This());
  uint64_t offset = 0;
  bool ok = args.Length() >= 1 + operands && ToU64(args[0], &offset);
  for (int i = 1; ok && i <= operands; i++) ok = args[i]->IsBigInt();
  if (!ok) {
    ThrowCode(isolate, "FABRIC_ARGS", usage);
    return;
  }
  if (!self->Ready(isolate, offset, 8, true)) return;
  for (int i = 0; i < operands; i++) {
    WORDS(self)[i] = static_cast<uint64_t>(args[i + 1].As<BigInt>()->Int64Value());
  }
  const int rc = self->Run(op, offset, 8);
  if (rc != 0) return self->Fail(isolate, op, rc);
  if (op != Op::kWrite64) {
    args.GetReturnValue().Set(BigInt::New(isolate, static_cast<int64_t>(WORDS(self)[2])));
  }
}

void FabricEndpoint::Read64(const FunctionCallbackInfo<Value>& args) {
  WordOp(args, Op::kRead64, 0, "read64(offset) needs an offset");
}

void FabricEndpoint::Write64(const FunctionCallbackInfo<Value>& args) {
  WordOp(args, Op::kWrite64, 1, "write64(offset, value) needs an offset and a bigint");
}

void FabricEndpoint::Cas64(const FunctionCallbackInfo<Value>& args) {
  WordOp(args, Op::kCas, 2, "cas64(offset, expected, desired) needs an offset and two bigints");
}

void FabricEndpoint::Faa64(const FunctionCallbackInfo<Value>& args) {
  WordOp(args, Op::kFaa, 1, "faa64(offset, delta) needs an offset and a bigint");
}

// bench(op: 'read' | 'write' | 'cas' | 'faa', offset, length, count): number — runs `count` operations
// in a C loop (no JS between them) and returns the elapsed nanoseconds: the baseline the TS fabric is
// measured against.
void FabricEndpoint::Bench(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  auto* self = ObjectWrap::Unwrap<FabricEndpoint>(args.This());
  uint64_t offset = 0;
  size_t length = 0;
  size_t count = 0;
  if (args.Length() < 4 || !args[0]->IsString() || !ToU64(args[1], &offset) ||
      !ToSize(args[2], &length) || !ToSize(args[3], &count)) {
    ThrowCode(isolate, "FABRIC_ARGS", "bench(op, offset, length, count) has bad arguments");
    return;
  }
  const std::string name = *String::Utf8Value(isolate, args[0]);
  Op op;
  if (name == "read") {
    op = Op::kRead;
  } else if (name == "write") {
    op = Op::kWrite;
  } else if (name == "cas") {
    op = Op::kCas;
    length = 8;
  } else if (name == "faa") {
    op = Op::kFaa;
    length = 8;
  } else {
    ThrowCode(isolate, "FABRIC_ARGS", "bench: op must be read, write, cas or faa");
    return;
  }
  if (length > self->bounceBytes_) {
    ThrowCode(isolate, "FABRIC_ARGS", "bench: length exceeds the bounce buffer");
    return;
  }
  if (!self->Ready(isolate, offset, length, op == Op::kCas || op == Op::kFaa)) return;
  uint64_t* words = WORDS(self);
  const uint64_t start = NowNs();
  for (size_t i = 0; i < count; i++) {
    words[0] = op == Op::kFaa ? 1 : i;
    words[1] = i + 1;
    const int rc = self->Run(op, offset, length);
    if (rc != 0) return self->Fail(isolate, op, rc);
  }
  args.GetReturnValue().Set(v8::Number::New(isolate, static_cast<double>(NowNs() - start)));
}

void FabricEndpoint::Init(Isolate* isolate, Local<Object> exports) {
  Local<Context> context = isolate->GetCurrentContext();
  Local<FunctionTemplate> tpl = FunctionTemplate::New(isolate, New);
  tpl->SetClassName(String::NewFromUtf8Literal(isolate, "FabricEndpoint"));
  tpl->InstanceTemplate()->SetInternalFieldCount(1);
  NODE_SET_PROTOTYPE_METHOD(tpl, "describe", Describe);
  NODE_SET_PROTOTYPE_METHOD(tpl, "connect", Connect);
  NODE_SET_PROTOTYPE_METHOD(tpl, "reset", Reset);
  NODE_SET_PROTOTYPE_METHOD(tpl, "close", Close);
  NODE_SET_PROTOTYPE_METHOD(tpl, "read", Read);
  NODE_SET_PROTOTYPE_METHOD(tpl, "write", Write);
  NODE_SET_PROTOTYPE_METHOD(tpl, "read64", Read64);
  NODE_SET_PROTOTYPE_METHOD(tpl, "write64", Write64);
  NODE_SET_PROTOTYPE_METHOD(tpl, "cas64", Cas64);
  NODE_SET_PROTOTYPE_METHOD(tpl, "faa64", Faa64);
  NODE_SET_PROTOTYPE_METHOD(tpl, "bench", Bench);
  exports
      ->Set(context, String::NewFromUtf8Literal(isolate, "FabricEndpoint"),
            tpl->GetFunction(context).ToLocalChecked())
      .Check();
}

// sweepShmNames(): unlinks the shm segments of dead dinomo processes; returns how many.
void SweepShmNames(const FunctionCallbackInfo<Value>& args) {
  args.GetReturnValue().Set(dinomo::SweepDeadShmNames());
}

}  // namespace

NODE_MODULE_INIT(/* exports, module, context */) {
  Isolate* isolate = context->GetIsolate();
  // shm's cross-memory-attach path lets the initiator write straight into the target's memory with
  // process_vm_writev, past any registration check: a revoked key would not stop a fenced KN. Without
  // it every access is applied by the target, which checks the key. Set before libfabric first reads
  // its parameters (the first fi_getinfo of the process).
  setenv("FI_SHM_DISABLE_CMA", "1", 1);
  FabricServer::Init(isolate, exports);
  FabricEndpoint::Init(isolate, exports);
  exports
      ->Set(context, String::NewFromUtf8Literal(isolate, "sweepShmNames"),
            FunctionTemplate::New(isolate, SweepShmNames)->GetFunction(context).ToLocalChecked())
      .Check();
}

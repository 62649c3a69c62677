// The pmem part of the dinomo addon: a file mapped into memory as a SharedArrayBuffer that worker
// threads share, and a flush of a byte range to the file.
//
// Node-API (Node 20) cannot create a SharedArrayBuffer, so this part uses the V8 API directly
// (v8::SharedArrayBuffer::NewBackingStore over our own mapping); it must be rebuilt for each Node
// major version. The mapping is MAP_SHARED: every store lands in the page cache at once, so it
// survives the death of any process; flush (msync MS_SYNC) makes it survive an OS crash too.
#include <node.h>
#include <v8.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {

using v8::ArrayBuffer;
using v8::BackingStore;
using v8::Context;
using v8::FunctionCallbackInfo;
using v8::Isolate;
using v8::Local;
using v8::Object;
using v8::SharedArrayBuffer;
using v8::String;
using v8::Value;

void Throw(Isolate* isolate, const std::string& message) {
  isolate->ThrowException(
      v8::Exception::Error(String::NewFromUtf8(isolate, message.c_str()).ToLocalChecked()));
}

std::string ErrnoText(const char* what, const std::string& path) {
  return std::string(what) + " " + path + ": " + std::strerror(errno);
}

void Unmap(void* data, size_t length, void* /*deleter_data*/) {
  if (data != nullptr && length > 0) munmap(data, length);
}

// mapFile(path: string, bytes: number, create: boolean): SharedArrayBuffer
// With `create`, a missing file is created and sized (blocks allocated up front, so a full disk is an
// error here rather than a SIGBUS later); an existing file must have exactly `bytes` bytes.
void MapFile(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  if (args.Length() < 3 || !args[0]->IsString() || !args[1]->IsNumber() || !args[2]->IsBoolean()) {
    Throw(isolate, "mapFile(path, bytes, create) needs a string, a number and a boolean");
    return;
  }
  String::Utf8Value pathUtf8(isolate, args[0]);
  const std::string path(*pathUtf8 == nullptr ? "" : *pathUtf8);
  const double bytesValue = args[1].As<v8::Number>()->Value();
  const bool create = args[2]->IsTrue();
  if (!(bytesValue > 0) || bytesValue > 9007199254740991.0 ||
      bytesValue != static_cast<double>(static_cast<uint64_t>(bytesValue))) {
    Throw(isolate, "mapFile: bytes must be a positive integer");
    return;
  }
  const size_t bytes = static_cast<size_t>(bytesValue);
  const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0644);
  if (fd < 0) {
    Throw(isolate, ErrnoText("cannot open", path));
    return;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    Throw(isolate, ErrnoText("cannot stat", path));
    close(fd);
    return;
  }
  if (static_cast<size_t>(st.st_size) != bytes) {
    if (!create || st.st_size != 0) {
      Throw(isolate, "the file " + path + " has " + std::to_string(st.st_size) + " bytes, not " +
                         std::to_string(bytes));
      close(fd);
      return;
    }
    const int rc = posix_fallocate(fd, 0, static_cast<off_t>(bytes));
    if (rc != 0) {
      errno = rc;
      Throw(isolate, ErrnoText("cannot allocate", path));
      close(fd);
      return;
    }
  }
  void* data = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (data == MAP_FAILED) {
    Throw(isolate, ErrnoText("cannot map", path));
    return;
  }
  std::unique_ptr<BackingStore> store =
      SharedArrayBuffer::NewBackingStore(data, bytes, Unmap, nullptr);
  Local<SharedArrayBuffer> sab = SharedArrayBuffer::New(isolate, std::move(store));
  args.GetReturnValue().Set(sab);
}

// flush(region: SharedArrayBuffer, offset: number, length: number): void
// msync(MS_SYNC) of the pages covering [offset, offset + length).
void Flush(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  if (args.Length() < 3 || !args[0]->IsSharedArrayBuffer() || !args[1]->IsNumber() ||
      !args[2]->IsNumber()) {
    Throw(isolate, "flush(region, offset, length) needs a SharedArrayBuffer and two numbers");
    return;
  }
  std::shared_ptr<BackingStore> store = args[0].As<SharedArrayBuffer>()->GetBackingStore();
  const double offset = args[1].As<v8::Number>()->Value();
  const double length = args[2].As<v8::Number>()->Value();
  const double size = static_cast<double>(store->ByteLength());
  if (!(offset >= 0) || !(length >= 0) || offset + length > size) {
    Throw(isolate, "flush: the range is outside the region");
    return;
  }
  if (length == 0) return;
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t base = reinterpret_cast<uintptr_t>(store->Data());
  const uintptr_t from = (base + static_cast<uintptr_t>(offset)) & ~(page - 1);
  const uintptr_t to = base + static_cast<uintptr_t>(offset + length);
  if (msync(reinterpret_cast<void*>(from), to - from, MS_SYNC) != 0) {
    Throw(isolate, ErrnoText("cannot flush", "the region"));
  }
}

}  // namespace

NODE_MODULE_INIT(/* exports, module, context */) {
  Isolate* isolate = context->GetIsolate();
  exports
      ->Set(context, String::NewFromUtf8Literal(isolate, "mapFile"),
            v8::FunctionTemplate::New(isolate, MapFile)->GetFunction(context).ToLocalChecked())
      .Check();
  exports
      ->Set(context, String::NewFromUtf8Literal(isolate, "flush"),
            v8::FunctionTemplate::New(isolate, Flush)->GetFunction(context).ToLocalChecked())
      .Check();
}

{
  "targets": [
    {
      "target_name": "dinomo_pmem",
      "sources": ["src/pmem.cc"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-cast-function-type"],
    }
  ]
}

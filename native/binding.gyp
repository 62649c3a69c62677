{
  "variables": {
    # The fabric part needs libfabric's headers (Debian: libfabric-dev); without them only pmem is built.
    "with_fabric%": "<!(node -p \"require('fs').existsSync('/usr/include/rdma/fabric.h') ? 1 : 0\")"
  },
  "targets": [
    {
      "target_name": "dinomo_pmem",
      "sources": ["src/pmem.cc"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-cast-function-type"],
    }
  ],
  "conditions": [
    ["with_fabric==1", {
      "targets": [
        {
          "target_name": "dinomo_fabric",
          "sources": ["src/fabric.cc", "src/shm-names.cc"],
          "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-cast-function-type"],
          "libraries": ["-lfabric"],
        }
      ]
    }]
  ]
}

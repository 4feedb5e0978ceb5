// libFuzzer entry point: any bytes given to the checkpoint reader must give a value or an error,
// never a crash, a hang, a leak or undefined behaviour. Tensors it returns must fit their storage.
#include "checkpoint/checkpointreader.h"

#include <QByteArray>

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    using namespace ifs::ckpt;
    // A copy, since storages may keep the buffer alive past this call's data.
    const QByteArray bytes(reinterpret_cast<const char *>(data), qsizetype(size));
    ReadOptions options;
    options.maxPickleObjects = 1 << 16;
    const ifs::Result<CheckpointFile> file = readCheckpoint(bytes, options, QStringLiteral("fuzz"));
    if (!file)
        return 0;
    // What the reader returns is safe to use: every tensor's view fits its storage.
    for (const StoragePtr &storage : storagesOf(file->root))
        if (storage->bytes.size() % elementSize(storage->dtype) != 0)
            __builtin_trap();
    const ifs::Result<StateDict> weights = extractStateDict(file->root);
    if (weights)
        for (const Value::Entry &entry : weights->tensors.entries())
            if (entry.second.isTensor()) {
                const Tensor t = entry.second.toTensor();
                if (t.checkLayout())
                    (void)t.contiguousBytes();
            }
    return 0;
}

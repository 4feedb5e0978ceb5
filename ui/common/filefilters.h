#pragma once

#include <QString>

namespace ifs {

/// The file name patterns of the checkpoint files the app reads, for file dialogs' filters.
inline QString checkpointFilePatterns()
{
    return QStringLiteral("*.pt *.pth *.tar *.ckpt *.bin *.safetensors");
}

} // namespace ifs

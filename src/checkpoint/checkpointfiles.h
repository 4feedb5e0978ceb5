#pragma once

// The file names checkpoints come with: one list for the file dialogs, drag and drop, the CLI,
// the writers (which choose the format by the suffix) and the tests. The reader itself goes by
// the content, whatever the name.

#include <QString>
#include <QStringList>

namespace ifs::ckpt {

/// Which checkpoint files a list means.
enum class CheckpointFiles : quint8 {
    All, ///< every checkpoint file: torch.save files and safetensors
    TorchSave, ///< what torch.save writes (.pt, .pth, .tar, .ckpt, .bin)
    Training, ///< what may hold a training checkpoint to resume from (not .bin, not safetensors)
};

/// The suffixes without the dot, lower case, the usual first: "pt", "pth", "tar", "ckpt", "bin",
/// "safetensors" for All.
QStringList checkpointSuffixes(CheckpointFiles which = CheckpointFiles::All);

/// A QFileDialog name filter: "*.pt *.pth *.tar *.ckpt *.bin *.safetensors" for All.
QString checkpointNameFilter(CheckpointFiles which = CheckpointFiles::All);

/// The suffixes for people: ".pt, .pth, .tar, .ckpt, .bin, .safetensors" for All.
QString checkpointSuffixText(CheckpointFiles which = CheckpointFiles::All);

/// Whether the file name of `path` ends with one of the suffixes, in any case ("a.PTH").
bool hasCheckpointSuffix(const QString &path, CheckpointFiles which = CheckpointFiles::All);

/// Whether `path` names a safetensors file (".safetensors", any case): writing to it writes that
/// format, and only a state dict.
bool isSafetensorsPath(const QString &path);

} // namespace ifs::ckpt

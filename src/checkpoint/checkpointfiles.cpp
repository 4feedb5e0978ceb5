#include "checkpoint/checkpointfiles.h"

#include <QFileInfo>

namespace ifs::ckpt {

namespace {

struct Suffix
{
    const char16_t *suffix;
    bool torchSave; ///< else safetensors
    bool training; ///< may hold a training checkpoint
};

constexpr Suffix kSuffixes[] = {
    {u"pt", true, true},   {u"pth", true, true},  {u"tar", true, true},
    {u"ckpt", true, true}, {u"bin", true, false}, {u"safetensors", false, false},
};

bool belongs(const Suffix &suffix, CheckpointFiles which)
{
    switch (which) {
    case CheckpointFiles::All:
        return true;
    case CheckpointFiles::TorchSave:
        return suffix.torchSave;
    case CheckpointFiles::Training:
        return suffix.training;
    }
    return false;
}

} // namespace

QStringList checkpointSuffixes(CheckpointFiles which)
{
    QStringList suffixes;
    for (const Suffix &suffix : kSuffixes) {
        if (belongs(suffix, which))
            suffixes.append(QString::fromUtf16(suffix.suffix));
    }
    return suffixes;
}

QString checkpointNameFilter(CheckpointFiles which)
{
    QStringList patterns;
    for (const QString &suffix : checkpointSuffixes(which))
        patterns.append(QStringLiteral("*.") + suffix);
    return patterns.join(u' ');
}

QString checkpointSuffixText(CheckpointFiles which)
{
    QStringList names;
    for (const QString &suffix : checkpointSuffixes(which))
        names.append(u'.' + suffix);
    return names.join(QStringLiteral(", "));
}

bool hasCheckpointSuffix(const QString &path, CheckpointFiles which)
{
    return checkpointSuffixes(which).contains(QFileInfo(path).suffix(), Qt::CaseInsensitive);
}

bool isSafetensorsPath(const QString &path)
{
    return path.endsWith(u".safetensors", Qt::CaseInsensitive);
}

} // namespace ifs::ckpt

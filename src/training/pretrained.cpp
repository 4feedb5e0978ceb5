// torchvision 0.14's weights table, torch.hub's cache and the hash check (see pretrained.h).

#include "training/pretrained.h"

#include "transforms/transformspec.h"

#include <QCryptographicHash>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QLocale>
#include <QRegularExpression>
#include <QUrl>

#include <algorithm>

namespace ifs {

namespace {

constexpr const char *kPytorchModels = "https://download.pytorch.org/models/";

/// One row: torchvision/models/<family>.py's `<Arch>_Weights` member, read from torchvision
/// 0.14's source (tst_pretrained compares every row with torchvision itself).
PretrainedWeights row(const char *arch, const char *name, bool isDefault, const char *file,
                      double top1, int resize, const char *interpolation = "BILINEAR")
{
    PretrainedWeights w;
    w.arch = QLatin1String(arch);
    w.name = QLatin1String(name);
    w.isDefault = isDefault;
    w.url = QLatin1String(kPytorchModels) + QLatin1String(file);
    w.top1 = top1;
    w.preprocessing.resizeSize = resize;
    w.preprocessing.cropSize = 224;
    w.preprocessing.interpolation = QLatin1String(interpolation);
    return w;
}

QList<PretrainedWeights> buildTable()
{
    QList<PretrainedWeights> t{
        row("resnet18", "IMAGENET1K_V1", true, "resnet18-f37072fd.pth", 69.758, 256),
        row("resnet34", "IMAGENET1K_V1", true, "resnet34-b627a593.pth", 73.314, 256),
        row("resnet50", "IMAGENET1K_V1", false, "resnet50-0676ba61.pth", 76.130, 256),
        row("resnet50", "IMAGENET1K_V2", true, "resnet50-11ad3fa6.pth", 80.858, 232),
        row("mobilenet_v2", "IMAGENET1K_V1", false, "mobilenet_v2-b0353104.pth", 71.878, 256),
        row("mobilenet_v2", "IMAGENET1K_V2", true, "mobilenet_v2-7ebf99e0.pth", 72.154, 232),
        row("efficientnet_b0", "IMAGENET1K_V1", true, "efficientnet_b0_rwightman-3dd342df.pth",
            77.692, 256, "BICUBIC"),
        row("mobilenet_v3_small", "IMAGENET1K_V1", true, "mobilenet_v3_small-047dcff4.pth", 67.668,
            256),
        row("mobilenet_v3_large", "IMAGENET1K_V1", false, "mobilenet_v3_large-8738ca79.pth", 74.042,
            256),
        row("mobilenet_v3_large", "IMAGENET1K_V2", true, "mobilenet_v3_large-5c1a4163.pth", 75.274,
            232),
        row("convnext_tiny", "IMAGENET1K_V1", true, "convnext_tiny-983f1562.pth", 82.520, 236),
        row("densenet121", "IMAGENET1K_V1", true, "densenet121-a639ec97.pth", 74.434, 256),
    };
    // densenet.py's _load_state_dict(): the files keep the names of before '.' was banned in
    // module names ("denselayer1.norm.1.weight" for "denselayer1.norm1.weight").
    PretrainedWeights &densenet = t.last();
    densenet.keyPattern = QStringLiteral(
        R"(^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$)");
    densenet.keyReplacement = QStringLiteral(R"(\1\2)");
    return t;
}

QString plural(const QStringList &names)
{
    return names.join(QStringLiteral(", "));
}

QString number(double v)
{
    return QString::number(v, 'g', QLocale::FloatingPointShortest);
}

QString triple(const std::array<double, 3> &v)
{
    return QStringLiteral("[%1, %2, %3]").arg(number(v[0]), number(v[1]), number(v[2]));
}

QString interpolationArgument(const WeightsPreprocessing &p)
{
    if (p.interpolation == u"BILINEAR")
        return {};
    return QStringLiteral(", interpolation=transforms.InterpolationMode.") + p.interpolation;
}

/// The canonical form of `source` (as the trainer stores pipelines); `source` itself if it does
/// not parse, which the table's rows never cause.
QString canonical(const QString &source)
{
    auto parsed = parseTransforms(source);
    return parsed ? toTorchvisionSource(parsed.value()) : source;
}

} // namespace

QString PretrainedWeights::fileName() const
{
    return QUrl(url).fileName();
}

QString PretrainedWeights::hashPrefix() const
{
    return hashPrefixOfFileName(fileName());
}

QString PretrainedWeights::title() const
{
    return arch + u' ' + name;
}

const QList<PretrainedWeights> &pretrainedWeightsTable()
{
    static const QList<PretrainedWeights> table = buildTable();
    return table;
}

QList<PretrainedWeights> pretrainedWeightsFor(const QString &arch)
{
    QList<PretrainedWeights> out;
    for (const PretrainedWeights &w : pretrainedWeightsTable())
        if (w.arch == arch)
            out.append(w);
    return out;
}

std::optional<QString> pretrainedNameFromText(const QString &text)
{
    const QString t = text.trimmed().toUpper();
    if (t == u"V1" || t == u"IMAGENET1K_V1")
        return QStringLiteral("IMAGENET1K_V1");
    if (t == u"V2" || t == u"IMAGENET1K_V2")
        return QStringLiteral("IMAGENET1K_V2");
    if (t == u"DEFAULT" || t == u"IMAGENET")
        return QStringLiteral("DEFAULT");
    return std::nullopt;
}

Result<PretrainedWeights> findPretrainedWeights(const QString &arch, const QString &request)
{
    const QList<PretrainedWeights> offered = pretrainedWeightsFor(arch);
    if (offered.isEmpty()) {
        QStringList archs;
        for (const PretrainedWeights &w : pretrainedWeightsTable())
            if (!archs.contains(w.arch))
                archs.append(w.arch);
        return Error{QStringLiteral("%1 has no pretrained weights: torchvision offers ImageNet "
                                    "weights for %2")
                         .arg(arch, plural(archs))};
    }
    const std::optional<QString> name = pretrainedNameFromText(request);
    if (!name)
        return Error{QStringLiteral("“%1” names no pretrained weights: choose IMAGENET1K_V1, "
                                    "IMAGENET1K_V2 or DEFAULT (V1, V2)")
                         .arg(request)};
    QStringList names;
    for (const PretrainedWeights &w : offered) {
        if (w.name == *name || (*name == u"DEFAULT" && w.isDefault))
            return w;
        names.append(w.name);
    }
    return Error{QStringLiteral("%1 has no %2 weights in torchvision 0.14 (only %3)")
                     .arg(arch, *name, plural(names))};
}

QString torchHubCheckpointsDir()
{
    QString torchHome = qEnvironmentVariable("TORCH_HOME");
    if (torchHome.isEmpty()) {
        QString cache = qEnvironmentVariable("XDG_CACHE_HOME");
        if (cache.isEmpty())
            cache = QStringLiteral("~/.cache");
        torchHome = cache + QStringLiteral("/torch");
    }
    // os.path.expanduser() of the whole path, as torch.hub does.
    if (torchHome == u"~" || torchHome.startsWith(QStringLiteral("~/")))
        torchHome = QDir::homePath() + torchHome.mid(1);
    return QDir::cleanPath(torchHome + QStringLiteral("/hub/checkpoints"));
}

PretrainedOptions PretrainedOptions::fromEnvironment()
{
    PretrainedOptions options;
    const QString accepted = qEnvironmentVariable("IFS_TEST_PRETRAINED_SHA256");
    for (const QString &digest : accepted.split(u',', Qt::SkipEmptyParts))
        options.acceptedSha256.append(digest.trimmed().toLower());
    options.urlBase = qEnvironmentVariable("IFS_TEST_PRETRAINED_URL");
    return options;
}

QString PretrainedOptions::cacheFolder() const
{
    return cacheDir.isEmpty() ? torchHubCheckpointsDir() : cacheDir;
}

QString PretrainedOptions::urlOf(const PretrainedWeights &weights) const
{
    if (urlBase.isEmpty())
        return weights.url;
    QString base = urlBase;
    if (!base.endsWith(u'/'))
        base += u'/';
    return base + weights.fileName();
}

QString PretrainedOptions::pathOf(const PretrainedWeights &weights) const
{
    return QDir(cacheFolder()).filePath(weights.fileName());
}

QString hashPrefixOfFileName(const QString &fileName)
{
    static const QRegularExpression hash(QStringLiteral(R"(-([a-f0-9]*)\.)"));
    const QRegularExpressionMatch match = hash.match(fileName);
    return match.hasMatch() ? match.captured(1) : QString();
}

Result<QString> sha256OfFile(const QString &path, const std::atomic_bool *cancel)
{
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly))
        return Error{QStringLiteral("cannot read “%1”: %2")
                         .arg(QDir::toNativeSeparators(path), file.errorString()),
                     ErrorCode::Io};
    QCryptographicHash hash(QCryptographicHash::Sha256);
    QByteArray chunk(1 << 20, Qt::Uninitialized);
    for (;;) {
        if (cancel && cancel->load())
            return Error{QStringLiteral("cancelled"), ErrorCode::Cancelled};
        const qint64 n = file.read(chunk.data(), chunk.size());
        if (n < 0)
            return Error{QStringLiteral("cannot read “%1”: %2")
                             .arg(QDir::toNativeSeparators(path), file.errorString()),
                         ErrorCode::Io};
        if (n == 0)
            break;
        hash.addData(QByteArrayView(chunk.constData(), n));
    }
    return QString::fromLatin1(hash.result().toHex());
}

bool digestAccepted(const QString &digest, const QString &prefix, const PretrainedOptions &options)
{
    return digest.startsWith(prefix) || options.acceptedSha256.contains(digest);
}

Status verifyWeightsFile(const QString &path, const PretrainedWeights &weights,
                         const PretrainedOptions &options)
{
    auto digest = sha256OfFile(path);
    if (!digest)
        return digest.error();
    const QString prefix = weights.hashPrefix();
    if (digestAccepted(digest.value(), prefix, options))
        return success();
    return Error{QStringLiteral("“%1” is not torchvision's %2 weights: its SHA-256 begins with "
                                "%3, the name says it must begin with %4 (a damaged or "
                                "unfinished download, or another file under that name). Delete "
                                "it to download it again, or put the file from %5 there.")
                     .arg(QDir::toNativeSeparators(path), weights.title(),
                          digest->left(std::max<qsizetype>(prefix.size(), 8)), prefix,
                          options.urlOf(weights)),
                 ErrorCode::Format};
}

Result<QString> findCachedWeights(const PretrainedWeights &weights,
                                  const PretrainedOptions &options)
{
    const QString path = options.pathOf(weights);
    if (!QFileInfo(path).isFile())
        return Error{
            missingWeightsMessage(weights, options, QStringLiteral("it is not in the cache")),
            ErrorCode::Io};
    if (Status ok = verifyWeightsFile(path, weights, options); !ok)
        return ok.error();
    return path;
}

QString missingWeightsMessage(const PretrainedWeights &weights, const PretrainedOptions &options,
                              const QString &reason)
{
    return QStringLiteral("Cannot get %1 from %2: %3. Download that file and put it at %4 "
                          "(torch.hub's cache, which Python's torchvision uses too), then start "
                          "again.")
        .arg(weights.title(), options.urlOf(weights), reason,
             QDir::toNativeSeparators(options.pathOf(weights)));
}

QString pretrainedValTransforms(const WeightsPreprocessing &p)
{
    return canonical(QStringLiteral("transforms.Compose([transforms.Resize(%1%2), "
                                    "transforms.CenterCrop(%3), transforms.ToTensor(), "
                                    "transforms.Normalize(mean=%4, std=%5)])")
                         .arg(p.resizeSize)
                         .arg(interpolationArgument(p))
                         .arg(p.cropSize)
                         .arg(triple(p.mean), triple(p.std)));
}

QString pretrainedTrainTransforms(const WeightsPreprocessing &p)
{
    return canonical(QStringLiteral("transforms.Compose([transforms.RandomResizedCrop(%1%2), "
                                    "transforms.RandomHorizontalFlip(), transforms.ToTensor(), "
                                    "transforms.Normalize(mean=%3, std=%4)])")
                         .arg(p.cropSize)
                         .arg(interpolationArgument(p))
                         .arg(triple(p.mean), triple(p.std)));
}

QStringList usePretrainedPipelines(const QString &arch, const QString &request, QString &train,
                                   QString &val)
{
    const Result<PretrainedWeights> weights = findPretrainedWeights(arch, request);
    if (!weights)
        return {};
    const WeightsPreprocessing &p = weights->preprocessing;
    QStringList notes;
    if (train.trimmed().isEmpty()) {
        train = pretrainedTrainTransforms(p);
        notes.append(QStringLiteral("Train transforms: RandomResizedCrop(%1) to match the "
                                    "preprocessing of %2")
                         .arg(p.cropSize)
                         .arg(weights->title()));
    }
    if (val.trimmed().isEmpty()) {
        val = pretrainedValTransforms(p);
        notes.append(QStringLiteral("Val transforms: the preprocessing of %1 (Resize(%2), "
                                    "CenterCrop(%3), ImageNet's mean and std)")
                         .arg(weights->title())
                         .arg(p.resizeSize)
                         .arg(p.cropSize));
    }
    return notes;
}

} // namespace ifs

#pragma once

// torchvision 0.14's pretrained weights, the way torchvision finds them: the weights each
// architecture offers (IMAGENET1K_V1, IMAGENET1K_V2, DEFAULT), their URLs and file names, the
// preprocessing they were trained with, and torch.hub's cache ($TORCH_HOME/hub/checkpoints), so
// that files a user's Python already downloaded are reused. A file is checked against the
// SHA-256 prefix in its name (torch.hub's check_hash) before it is used. Downloading lives in
// weightsdownload.h. Torch-free.

#include "base/result.h"

#include <QList>
#include <QString>
#include <QStringList>

#include <array>
#include <atomic>
#include <optional>

namespace ifs {

/// The preprocessing the weights were trained with: the arguments of torchvision's
/// `ImageClassification` preset (`weights.transforms()`).
struct WeightsPreprocessing
{
    int resizeSize = 256;
    int cropSize = 224;
    std::array<double, 3> mean{0.485, 0.456, 0.406};
    std::array<double, 3> std{0.229, 0.224, 0.225};
    QString interpolation = QStringLiteral("BILINEAR"); ///< an InterpolationMode member
};

/// One entry of a torchvision `<Arch>_Weights` enum.
struct PretrainedWeights
{
    QString arch; ///< "resnet18": our architecture name (ModelArch::name)
    QString name; ///< "IMAGENET1K_V1"
    bool isDefault = false; ///< the enum's DEFAULT
    QString url; ///< "https://download.pytorch.org/models/resnet18-f37072fd.pth"
    double top1 = 0.0; ///< ImageNet-1K acc@1 (percent), as torchvision's meta says
    WeightsPreprocessing preprocessing;
    /// torchvision's own key renames before load_state_dict, as Python's re.sub (densenet's
    /// files keep the old "norm.1" names): empty when there are none.
    QString keyPattern;
    QString keyReplacement;

    /// The file's name in the cache: the URL's last component ("resnet18-f37072fd.pth").
    QString fileName() const;
    /// The SHA-256 prefix the name carries ("f37072fd"); empty when it has none.
    QString hashPrefix() const;
    /// "resnet18 IMAGENET1K_V1"
    QString title() const;
};

/// Every architecture's weights, in the order of the architectures and then V1, V2.
const QList<PretrainedWeights> &pretrainedWeightsTable();
/// The weights torchvision offers for `arch` (none for small_cnn).
QList<PretrainedWeights> pretrainedWeightsFor(const QString &arch);

/// The canonical name for what a user typed: "v1", "IMAGENET1K_V1" → "IMAGENET1K_V1", "v2" →
/// "IMAGENET1K_V2", "default", "imagenet" → "DEFAULT"; nullopt for anything else (and for "").
std::optional<QString> pretrainedNameFromText(const QString &text);

/// The weights that `request` ("IMAGENET1K_V1", "IMAGENET1K_V2", "DEFAULT") names for `arch`.
/// Fails with a message that says what exists: "resnet18 has no IMAGENET1K_V2 weights in
/// torchvision 0.14 (only IMAGENET1K_V1)", "small_cnn has no pretrained weights: …".
Result<PretrainedWeights> findPretrainedWeights(const QString &arch, const QString &request);

/// torch.hub's checkpoint folder: `$TORCH_HOME/hub/checkpoints`, where TORCH_HOME defaults to
/// `$XDG_CACHE_HOME/torch` and that to `~/.cache/torch` (torch.hub.get_dir()).
QString torchHubCheckpointsDir();

/// Where weights are looked for and downloaded from. fromEnvironment() is what the app uses;
/// tests set the fields (or the IFS_TEST_ variables) to use local files and servers.
struct PretrainedOptions
{
    QString cacheDir; ///< empty: torchHubCheckpointsDir()
    /// Test only: files with one of these SHA-256 digests (lower-case hex, whole) are accepted
    /// whatever their name says, so that tests can use files torchvision writes under the
    /// canonical names. From IFS_TEST_PRETRAINED_SHA256 (comma-separated).
    QStringList acceptedSha256;
    /// Test only: replaces "https://download.pytorch.org/models/" in the URLs (a local server).
    /// From IFS_TEST_PRETRAINED_URL.
    QString urlBase;

    static PretrainedOptions fromEnvironment();
    QString cacheFolder() const; ///< cacheDir, or torchHubCheckpointsDir()
    QString urlOf(const PretrainedWeights &weights) const;
    QString pathOf(const PretrainedWeights &weights) const; ///< in the cache, the canonical name
};

/// torch.hub's hash prefix of a file name: the hex digits after the first "-" that are followed
/// by a "." (HASH_REGEX `-([a-f0-9]*)\.`); empty when the name has none.
QString hashPrefixOfFileName(const QString &fileName);

/// The SHA-256 of a file, as lower-case hex. `cancel` (optional) is polled between chunks.
Result<QString> sha256OfFile(const QString &path, const std::atomic_bool *cancel = nullptr);

/// Whether a digest passes: it starts with `prefix` (torch.hub's check), or the options accept it.
bool digestAccepted(const QString &digest, const QString &prefix, const PretrainedOptions &options);

/// Checks that `path` holds `weights`: its SHA-256 starts with the name's prefix. The error
/// says which file, what was expected and what to do.
Status verifyWeightsFile(const QString &path, const PretrainedWeights &weights,
                         const PretrainedOptions &options);

/// The cached, verified file of `weights`: its path; an Error with ErrorCode::Io and the
/// message of missingWeightsMessage() when it is not there, or verifyWeightsFile()'s error when
/// it is there but is not those weights.
Result<QString> findCachedWeights(const PretrainedWeights &weights,
                                  const PretrainedOptions &options);

/// What to do without a network: "Cannot download resnet18 IMAGENET1K_V1 from <url>: <reason>.
/// Download that file and put it at <path> (torch.hub's cache, which Python's torchvision also
/// uses), then start again."
QString missingWeightsMessage(const PretrainedWeights &weights, const PretrainedOptions &options,
                              const QString &reason);

/// The val pipeline the weights expect, as torchvision source: Resize(resize) +
/// CenterCrop(crop) + ToTensor + Normalize(mean, std), with the interpolation where it is not
/// bilinear (what `weights.transforms()` does to a PIL image).
QString pretrainedValTransforms(const WeightsPreprocessing &preprocessing);
/// The matching train pipeline: RandomResizedCrop(crop) + RandomHorizontalFlip + ToTensor +
/// Normalize(mean, std), the interpolation as above.
QString pretrainedTrainTransforms(const WeightsPreprocessing &preprocessing);

/// A run from pretrained weights (`arch`, `request` as TrainConfig::pretrained) proposes the
/// weights' pipelines: empty `train` and `val` sources become pretrainedTrainTransforms() and
/// pretrainedValTransforms(), and the notes say so. Nothing changes for an unknown request.
QStringList usePretrainedPipelines(const QString &arch, const QString &request, QString &train,
                                   QString &val);

} // namespace ifs

// Decodes every sample the way torchvision's loader would and collects what is wrong with it.
// Errors are exactly what PIL refuses (checked against Pillow 9.4 by tests/tst_healthcheck.cpp).
#include "dataset/healthcheck.h"

#include "base/filenames.h"
#include "base/logging.h"

#include <QCryptographicHash>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QHash>
#include <QThread>

#include <exception>
#include <memory>
#include <thread>
#include <vector>

namespace ifs {

const char *healthKindKey(HealthFinding::Kind kind)
{
    switch (kind) {
    case HealthFinding::Kind::ZeroByte:
        return "zero_byte";
    case HealthFinding::Kind::Unreadable:
        return "unreadable";
    case HealthFinding::Kind::Truncated:
        return "truncated";
    case HealthFinding::Kind::HugeDimensions:
        return "huge_dimensions";
    case HealthFinding::Kind::TinyDimensions:
        return "tiny_dimensions";
    case HealthFinding::Kind::UnusualMode:
        return "unusual_mode";
    case HealthFinding::Kind::WrongExtension:
        return "wrong_extension";
    case HealthFinding::Kind::Duplicate:
        return "duplicate";
    case HealthFinding::Kind::NearDuplicate:
        return "near_duplicate";
    }
    return "unknown";
}

const char *healthSeverityKey(HealthFinding::Severity severity)
{
    switch (severity) {
    case HealthFinding::Severity::Info:
        return "info";
    case HealthFinding::Severity::Warning:
        return "warning";
    case HealthFinding::Severity::Error:
        return "error";
    }
    return "unknown";
}

int HealthReport::errorCount() const
{
    return int(std::count_if(findings.cbegin(), findings.cend(), [](const HealthFinding &f) {
        return f.severity == HealthFinding::Severity::Error;
    }));
}

int HealthReport::warningCount() const
{
    return int(std::count_if(findings.cbegin(), findings.cend(), [](const HealthFinding &f) {
        return f.severity == HealthFinding::Severity::Warning;
    }));
}

namespace {

using Kind = HealthFinding::Kind;
using Severity = HealthFinding::Severity;
using CheckStatus = ImageCheck::Status;

/// One file to check, in sample order.
struct Item
{
    const HealthTarget *target;
    const Sample *sample;
    QString name; ///< "split/relative/path", or the relative path without splits
};

struct Outcome
{
    bool checked = false;
    ImageCheck check;
    QByteArray hash; ///< only for loadable files whose size another file shares
    /// findNearDuplicates: the image's hash and thumbnail (null when it is not looked at; a
    /// pointer, so that a check without it holds no room for them)
    std::shared_ptr<const ImageFingerprint> fingerprint;
};

/// Runs fn(worker, index) for index in [0, count) on `threads` threads (the caller's included),
/// polling `cancel` between items. Returns false when cancelled.
bool parallelFor(size_t count, int threads, const std::atomic_bool *cancel,
                 const std::function<void(int worker, size_t index)> &fn)
{
    std::atomic<size_t> next{0};
    std::atomic_bool stopped{false};
    auto work = [&](int worker) {
        for (;;) {
            if (cancel && cancel->load(std::memory_order_relaxed)) {
                stopped = true;
                return;
            }
            const size_t index = next.fetch_add(1, std::memory_order_relaxed);
            if (index >= count)
                return;
            fn(worker, index);
        }
    };
    threads = int(std::clamp<size_t>(size_t(std::max(threads, 1)), 1, std::max<size_t>(count, 1)));
    std::vector<std::thread> pool;
    pool.reserve(size_t(threads - 1));
    for (int worker = 1; worker < threads; ++worker)
        pool.emplace_back(work, worker);
    work(0);
    for (std::thread &thread : pool)
        thread.join();
    return !stopped;
}

QString quoted(const QString &name)
{
    return u'“' + name + u'”';
}

/// The extensions that name each format; a file whose extension names another format is odd.
QString formatOfExtension(const QString &suffix)
{
    static const QHash<QString, QString> formats = {
        {QStringLiteral("jpg"), QStringLiteral("JPEG")},
        {QStringLiteral("jpeg"), QStringLiteral("JPEG")},
        {QStringLiteral("jpe"), QStringLiteral("JPEG")},
        {QStringLiteral("jfif"), QStringLiteral("JPEG")},
        {QStringLiteral("png"), QStringLiteral("PNG")},
        {QStringLiteral("bmp"), QStringLiteral("BMP")},
        {QStringLiteral("dib"), QStringLiteral("BMP")},
        {QStringLiteral("webp"), QStringLiteral("WEBP")},
        {QStringLiteral("tif"), QStringLiteral("TIFF")},
        {QStringLiteral("tiff"), QStringLiteral("TIFF")},
        {QStringLiteral("ppm"), QStringLiteral("PPM")},
        {QStringLiteral("pgm"), QStringLiteral("PPM")},
        {QStringLiteral("pbm"), QStringLiteral("PPM")},
        {QStringLiteral("pnm"), QStringLiteral("PPM")},
        {QStringLiteral("gif"), QStringLiteral("GIF")},
    };
    return formats.value(suffix.toLower());
}

QString usualExtension(const QString &format)
{
    if (format == u"JPEG")
        return QStringLiteral(".jpg");
    if (format == u"TIFF")
        return QStringLiteral(".tif");
    return u'.' + format.toLower();
}

bool isGray(PixelMode mode)
{
    return mode == PixelMode::Gray || mode == PixelMode::GrayAlpha || mode == PixelMode::Gray16;
}

/// The sentence for an odd pixel layout, or empty when the mode is ordinary for this dataset.
QString unusualModeMessage(const QString &name, const ImageHeader &h, bool mostlyColour)
{
    const QString file = quoted(name);
    switch (h.mode) {
    case PixelMode::Gray16:
        return QStringLiteral("%1 is a 16-bit grayscale image: torchvision's loader clips every "
                              "value above 255 to white, so most of the picture is lost. Convert "
                              "it to 8 bits (scaling the values) before training.")
            .arg(file);
    case PixelMode::CMYK:
    case PixelMode::YCCK:
        return QStringLiteral("%1 is a CMYK JPEG: torchvision converts it to RGB with a naive "
                              "formula that ignores its colour profile, so its colours may be "
                              "off. Convert it to RGB (sRGB) to be sure what the model sees.")
            .arg(file);
    case PixelMode::RGB16:
        return QStringLiteral("%1 has 16 bits per channel: torchvision's loader keeps only the "
                              "high byte of each value%2. Convert it to 8-bit RGB to control "
                              "how it is reduced.")
            .arg(file, h.hasAlpha ? QStringLiteral(" and drops the alpha channel") : QString());
    case PixelMode::Palette:
        return QStringLiteral("%1 is a palette (indexed-colour) image%2: torchvision expands it "
                              "to RGB%3. Convert it to RGB if that is not what you want.")
            .arg(file, h.hasAlpha ? QStringLiteral(" with transparency") : QString(),
                 h.hasAlpha ? QStringLiteral(" and ignores the transparency, so transparent "
                                             "areas show their hidden colour")
                            : QString());
    case PixelMode::RGBA:
    case PixelMode::GrayAlpha:
        return QStringLiteral("%1 has an alpha channel: torchvision drops it without blending, "
                              "so transparent areas show whatever colour hides under them. "
                              "Flatten it onto a background if that matters.")
            .arg(file);
    case PixelMode::Gray:
        if (!mostlyColour)
            return {};
        return QStringLiteral("%1 is %2 in a dataset of mostly colour images: torchvision copies "
                              "the gray into all three channels. Check that it belongs here.")
            .arg(file,
                 h.bitDepth == 1 ? QStringLiteral("black and white (1-bit)")
                                 : QStringLiteral("grayscale"));
    default:
        if (h.hasAlpha)
            return QStringLiteral("%1 has transparency: torchvision drops it without blending.")
                .arg(file);
        return {};
    }
}

void add(HealthReport &report, const Item &item, const QString &absolutePath, Kind kind,
         Severity severity, QString message, QString duplicateOf = {})
{
    HealthFinding finding;
    finding.kind = kind;
    finding.severity = severity;
    finding.split = item.target->split;
    finding.relativePath = item.sample->displayPath();
    finding.absolutePath = absolutePath;
    finding.message = std::move(message);
    finding.duplicateOf = std::move(duplicateOf);
    report.findings.append(std::move(finding));
}

/// The error a file that PIL cannot load gets, or false when it loads.
bool addError(HealthReport &report, const Item &item, const QString &path, const ImageCheck &c)
{
    static const QString advice = QStringLiteral(
        " torchvision's loader raises an error on it and training stops there; remove it or "
        "replace it with a good copy.");
    switch (c.status) {
    case CheckStatus::Ok:
        return false;
    case CheckStatus::Empty:
        add(report, item, path, Kind::ZeroByte, Severity::Error, c.message + u'.' + advice);
        return true;
    case CheckStatus::Truncated:
        add(report, item, path, Kind::Truncated, Severity::Error, c.message + u'.' + advice);
        return true;
    case CheckStatus::TooLarge:
        add(report, item, path, Kind::HugeDimensions, Severity::Error,
            c.message + QStringLiteral(". Downscale it or remove it."));
        return true;
    case CheckStatus::NotAnImage:
    case CheckStatus::Broken:
    case CheckStatus::ReadFailed:
        add(report, item, path, Kind::Unreadable, Severity::Error, c.message + u'.' + advice);
        return true;
    }
    return false;
}

std::vector<Item> itemsOf(const QList<HealthTarget> &targets)
{
    std::vector<Item> items;
    for (const HealthTarget &target : targets) {
        if (!target.index)
            continue;
        for (const Sample &sample : target.index->samples) {
            const QString relative = sample.displayPath();
            items.push_back({&target, &sample,
                             target.split.isEmpty() ? relative : target.split + u'/' + relative});
        }
    }
    return items;
}

QString pathOf(const Item &item)
{
    return item.target->index->absolutePath(*item.sample);
}

/// The files' sizes (-1 when missing) and how many files have each size: only files whose size
/// another file shares get hashed, while their bytes are in memory anyway.
struct SizeCensus
{
    std::vector<int64_t> sizes;
    QHash<int64_t, int> counts;

    bool shared(size_t i) const
    {
        return i < sizes.size() && sizes[i] > 0 && counts.value(sizes[i]) > 1;
    }
};

SizeCensus takeSizeCensus(const std::vector<Item> &items, int threads,
                          const std::atomic_bool *cancel)
{
    SizeCensus census;
    census.sizes.assign(items.size(), -1);
    parallelFor(items.size(), threads, cancel, [&](int, size_t i) {
        census.sizes[i] = fileSizeOf(pathOf(items[i])); // by its bytes (base/filenames.h)
    });
    for (int64_t size : census.sizes) {
        if (size > 0)
            ++census.counts[size];
    }
    return census;
}

/// The fingerprint of a file that loads, from the bytes the checker holds: decoded at a reduced
/// size (a JPEG's DCT scaling, down to no less than four times the hash's 32 × 32: closer to
/// it, the scaled decode differs enough from a full one to move a copy's thumbnail measurably).
void hashPerceptually(Outcome &outcome, QByteArrayView bytes, const QString &name)
{
    constexpr int kDecodeSide = 4 * kPerceptualHashSide;
    const Result<QImage> image = decodeImageRgb(bytes, name, QSize(kDecodeSide, kDecodeSide));
    if (!image)
        return;
    outcome.fingerprint = std::make_shared<const ImageFingerprint>(imageFingerprint(image.value()));
}

/// Decodes every file on `threads` workers (one ImageChecker each); false when cancelled.
bool checkAll(const std::vector<Item> &items, const SizeCensus &census, int threads,
              bool nearDuplicates, const std::function<void(int64_t done, int64_t total)> &progress,
              const std::atomic_bool *cancel, std::vector<Outcome> &outcomes, int64_t &bytesRead)
{
    const int64_t total = int64_t(items.size());
    outcomes.assign(items.size(), {});
    std::vector<std::unique_ptr<ImageChecker>> checkers(size_t(std::max(threads, 1)));
    std::atomic<int64_t> done{0};
    std::atomic<int64_t> bytes{0};
    const bool finished = parallelFor(items.size(), threads, cancel, [&](int worker, size_t i) {
        std::unique_ptr<ImageChecker> &checker = checkers[size_t(worker)];
        if (!checker)
            checker = std::make_unique<ImageChecker>();
        Outcome &outcome = outcomes[i];
        const Item &item = items[i];
        try {
            outcome.check = checker->check(pathOf(item), item.name);
            bytes += int64_t(checker->data().size());
            if (outcome.check.status == CheckStatus::Ok && census.shared(i)) {
                // SHA-1 is plenty to tell files apart that nobody crafted to collide.
                outcome.hash = QCryptographicHash::hash(checker->data(), QCryptographicHash::Sha1);
            }
            if (nearDuplicates && outcome.check.status == CheckStatus::Ok)
                hashPerceptually(outcome, checker->data(), item.name);
        } catch (const std::exception &e) {
            // bad_alloc for a gigantic file, mostly: the worker must not die with it.
            outcome.check = {};
            outcome.check.status = CheckStatus::ReadFailed;
            outcome.check.message = QStringLiteral("Cannot check %1: %2")
                                        .arg(quoted(item.name), QString::fromLocal8Bit(e.what()));
        }
        outcome.checked = true;
        const int64_t count = ++done;
        if (progress && (count % 64 == 0 || count == total))
            progress(count, total);
    });
    bytesRead = bytes;
    return finished;
}

/// Whether most decoded images are in colour: then gray ones are unusual (MNIST-like sets are
/// all gray).
bool mostlyColour(const std::vector<Outcome> &outcomes)
{
    int64_t gray = 0, colour = 0;
    for (const Outcome &outcome : outcomes) {
        if (outcome.checked && outcome.check.status == CheckStatus::Ok)
            (isGray(outcome.check.header.mode) ? gray : colour) += 1;
    }
    return colour > gray;
}

/// The warnings for a file that loads: an incomplete file, its dimensions, mode and extension.
void addWarnings(HealthReport &report, const Item &item, const QString &path, const ImageCheck &c,
                 const HealthOptions &options, bool colourSet)
{
    const ImageHeader &h = c.header;
    const QString file = quoted(item.name);
    if (c.missingTrailer) {
        add(report, item, path, Kind::Truncated, Severity::Warning,
            c.message
                + QStringLiteral(". torchvision still loads it, but the picture may be "
                                 "incomplete; copy it again from its source if you can."));
    }
    if (h.pixelCount() > kPilMaxImagePixels) {
        add(report, item, path, Kind::HugeDimensions, Severity::Warning,
            QStringLiteral("%1 is %2 × %3 pixels (%L4 pixels), above PIL's decompression-bomb "
                           "warning limit of %L5 pixels: torchvision loads it slowly and "
                           "warns each time. Downscale it.")
                .arg(file)
                .arg(h.size.width())
                .arg(h.size.height())
                .arg(h.pixelCount())
                .arg(kPilMaxImagePixels));
    }
    if (std::min(h.size.width(), h.size.height()) < options.minSide) {
        add(report, item, path, Kind::TinyDimensions, Severity::Warning,
            QStringLiteral("%1 is only %2 × %3 pixels: scaled up to the network's input size "
                           "it carries almost no information. Check that it belongs in the "
                           "dataset.")
                .arg(file)
                .arg(h.size.width())
                .arg(h.size.height()));
    }
    const QString modeMessage = unusualModeMessage(item.name, h, colourSet);
    if (!modeMessage.isEmpty())
        add(report, item, path, Kind::UnusualMode, Severity::Warning, modeMessage);
    const QString suffix = QFileInfo(item.name).suffix();
    const QString named = formatOfExtension(suffix);
    if (!named.isEmpty() && named != h.format) {
        add(report, item, path, Kind::WrongExtension, Severity::Info,
            QStringLiteral("%1 is a %2 image despite its .%3 extension. torchvision reads it "
                           "by its content, but other tools may not; rename it to %4.")
                .arg(file, h.format, suffix, usualExtension(h.format)));
    }
}

void addDuplicate(HealthReport &report, const Item &item, const QString &path, const Item &original)
{
    const QString file = quoted(item.name);
    const bool crossSplit = original.target->split != item.target->split;
    add(report, item, path, Kind::Duplicate, Severity::Warning,
        crossSplit ? QStringLiteral("%1 is byte-identical to %2 in another split: the same "
                                    "image in training and evaluation inflates the scores. "
                                    "Remove one copy.")
                         .arg(file, quoted(original.name))
                   : QStringLiteral("%1 is byte-identical to %2: the duplicate counts twice "
                                    "in training. Remove one copy.")
                         .arg(file, quoted(original.name)),
        original.name);
}

/// The groups of images whose perceptual hashes are within the threshold (byte-identical
/// copies, reported as duplicates already, left out): each member after the first is a
/// finding naming the first, an error when the two are in different splits.
void addNearDuplicates(HealthReport &report, const std::vector<Item> &items,
                       const std::vector<Outcome> &outcomes, const std::vector<bool> &exactCopy,
                       const NearDuplicateOptions &options)
{
    std::vector<ImageFingerprint> fingerprints(items.size());
    std::vector<bool> valid(items.size(), false);
    for (size_t i = 0; i < items.size(); ++i) {
        if (outcomes[i].fingerprint)
            fingerprints[i] = *outcomes[i].fingerprint;
        valid[i] = outcomes[i].fingerprint && !exactCopy[i];
    }
    const auto pairs = findNearDuplicates(fingerprints, options, valid);
    for (const std::vector<size_t> &group : nearDuplicateGroups(items.size(), pairs)) {
        const Item &first = items[group.front()];
        for (size_t k = 1; k < group.size(); ++k) {
            const Item &item = items[group[k]];
            const int distance
                = hammingDistance(fingerprints[group[k]].hash, fingerprints[group.front()].hash);
            const bool leak = item.target->split != first.target->split;
            const QString file = quoted(item.name), other = quoted(first.name);
            const QString bits
                = distance == 1 ? QStringLiteral("1 bit") : QStringLiteral("%1 bits").arg(distance);
            add(report, item, pathOf(item), Kind::NearDuplicate,
                leak ? Severity::Error : Severity::Warning,
                leak ? QStringLiteral("%1 looks like %2 in another split (perceptual hashes %3 "
                                      "apart: a resized, re-encoded or cropped copy): leakage, "
                                      "the same image in training and evaluation inflates the "
                                      "scores. Remove one copy.")
                           .arg(file, other, bits)
                     : QStringLiteral("%1 looks like %2 (perceptual hashes %3 apart: a resized, "
                                      "re-encoded or cropped copy): it counts twice in training. "
                                      "Compare them and remove one if they are the same.")
                           .arg(file, other, bits),
                first.name);
            report.findings.last().hashDistance = distance;
        }
    }
}

/// Turns the outcomes into findings, in the items' order.
void addFindings(HealthReport &report, const std::vector<Item> &items,
                 const std::vector<Outcome> &outcomes, const HealthOptions &options)
{
    const bool colourSet = mostlyColour(outcomes);
    QHash<QByteArray, size_t> firstWithHash;
    std::vector<bool> exactCopy(items.size(), false);
    for (size_t i = 0; i < items.size(); ++i) {
        const Outcome &outcome = outcomes[i];
        if (!outcome.checked)
            continue;
        ++report.filesChecked;
        const Item &item = items[i];
        const QString path = pathOf(item);
        if (addError(report, item, path, outcome.check))
            continue;
        addWarnings(report, item, path, outcome.check, options, colourSet);
        if (outcome.hash.isEmpty())
            continue;
        const auto first = firstWithHash.constFind(outcome.hash);
        if (first == firstWithHash.cend()) {
            firstWithHash.insert(outcome.hash, i);
        } else {
            addDuplicate(report, item, path, items[*first]);
            exactCopy[i] = true;
        }
    }
    if (options.findNearDuplicates)
        addNearDuplicates(report, items, outcomes, exactCopy,
                          {options.nearDuplicateThreshold, options.nearDuplicateMaxDifference});
}

} // namespace

HealthReport checkHealth(const QList<HealthTarget> &targets, const HealthOptions &options,
                         const std::function<void(int64_t done, int64_t total)> &progress,
                         const std::atomic_bool *cancel)
{
    QElapsedTimer timer;
    timer.start();
    HealthReport report;
    const std::vector<Item> items = itemsOf(targets);
    const int threads = options.threads > 0 ? options.threads : QThread::idealThreadCount();
    if (progress)
        progress(0, int64_t(items.size()));
    const SizeCensus census
        = options.findDuplicates ? takeSizeCensus(items, threads, cancel) : SizeCensus{};
    std::vector<Outcome> outcomes;
    int64_t bytesRead = 0;
    report.cancelled = !checkAll(items, census, threads, options.findNearDuplicates, progress,
                                 cancel, outcomes, bytesRead);
    addFindings(report, items, outcomes, options);
    report.bytesRead = bytesRead;
    report.seconds = double(timer.nsecsElapsed()) / 1e9;
    qCDebug(lcHealth) << "checked" << report.filesChecked << "files," << report.bytesRead
                      << "bytes in" << report.seconds << "s," << report.findings.size()
                      << "findings" << (report.cancelled ? "(cancelled)" : "");
    return report;
}

} // namespace ifs

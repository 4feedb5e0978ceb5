#include "dataset/datasetlayout.h"

#include "base/jsonwriter.h"

#include <QDir>
#include <QFileInfo>
#include <QLocale>
#include <QSaveFile>

#include <algorithm>

namespace ifs {

namespace {

/// Validation split names in the order we prefer them when several exist.
const char16_t *const kValidationNames[] = {u"val", u"valid", u"validation", u"test"};

QString quoted(const QStringList &names, int atMost = 8)
{
    QStringList shown;
    for (int i = 0; i < names.size() && i < atMost; ++i)
        shown.append(QStringLiteral("“%1”").arg(names[i]));
    QString text = shown.join(QStringLiteral(", "));
    if (names.size() > atMost)
        text += QStringLiteral(" and %1 more").arg(names.size() - atMost);
    return text;
}

} // namespace

QString DatasetLayout::splitRoot(const QString &split) const
{
    return split.isEmpty() ? root : root + u'/' + split;
}

DatasetLayout detectLayout(const QString &root)
{
    DatasetLayout layout;
    layout.root = QDir::cleanPath(QFileInfo(root).absoluteFilePath());
    const QDir dir(layout.root);
    if (!QFileInfo(dir.filePath(QStringLiteral("train"))).isDir())
        return layout;
    QStringList splits{QStringLiteral("train")};
    for (const char16_t *name : kValidationNames) {
        const QString split = QString::fromUtf16(name);
        if (QFileInfo(dir.filePath(split)).isDir())
            splits.append(split);
    }
    if (splits.size() > 1)
        layout.splits = splits;
    return layout;
}

QString SplitMismatch::message() const
{
    QStringList parts;
    if (!onlyInFirst.isEmpty())
        parts.append(QStringLiteral("%1 only in %2").arg(quoted(onlyInFirst), firstSplit));
    if (!onlyInSecond.isEmpty())
        parts.append(QStringLiteral("%1 only in %2").arg(quoted(onlyInSecond), secondSplit));
    if (!differentIndex.isEmpty())
        parts.append(QStringLiteral("%1 with different indices").arg(quoted(differentIndex)));
    return QStringLiteral("The classes of %1 and %2 do not agree: %3. Each split gets its own "
                          "class_to_idx, so the same index means different classes and the "
                          "validation metrics are silently wrong. Make both splits hold the same "
                          "class folders (an empty folder is enough with allow_empty).")
        .arg(firstSplit, secondSplit, parts.join(QStringLiteral("; ")));
}

SplitMismatch compareSplits(const QString &firstName, const ImageFolderIndex &first,
                            const QString &secondName, const ImageFolderIndex &second)
{
    SplitMismatch mismatch;
    mismatch.firstSplit = firstName;
    mismatch.secondSplit = secondName;
    for (int i = 0; i < first.classes.size(); ++i) {
        const int other = second.classIndex(first.classes[i]);
        if (other < 0)
            mismatch.onlyInFirst.append(first.classes[i]);
        else if (other != i)
            mismatch.differentIndex.append(first.classes[i]);
    }
    for (const QString &name : second.classes) {
        if (first.classIndex(name) < 0)
            mismatch.onlyInSecond.append(name);
    }
    return mismatch;
}

Result<DatasetScan> scanDataset(const DatasetLayout &layout, const ScanOptions &options,
                                const ScanCallbacks &callbacks,
                                const std::function<void(const QString &split)> &splitStarted,
                                const std::atomic_bool *cancel)
{
    DatasetScan scan;
    scan.layout = layout;
    scan.splits = layout.hasSplits() ? layout.splits : QStringList{QString()};
    for (const QString &split : std::as_const(scan.splits)) {
        if (splitStarted)
            splitStarted(split);
        Result<ImageFolderIndex> scanned
            = scanImageFolder(layout.splitRoot(split), options, callbacks, cancel);
        if (!scanned)
            return scanned.error();
        if (cancel && cancel->load())
            return scan;
        scan.indexes.insert(split,
                            std::make_shared<const ImageFolderIndex>(std::move(scanned).value()));
    }
    const IndexPtr first = scan.index(scan.splits.constFirst());
    for (qsizetype i = 1; i < scan.splits.size(); ++i) {
        SplitMismatch mismatch = compareSplits(scan.splits.constFirst(), *first, scan.splits[i],
                                               *scan.index(scan.splits[i]));
        if (!mismatch.isEmpty())
            scan.mismatches.append(std::move(mismatch));
    }
    return scan;
}

QList<DatasetWarning> analyseDataset(const ImageFolderIndex &index)
{
    using Kind = DatasetWarning::Kind;
    using Severity = DatasetWarning::Severity;
    QList<DatasetWarning> warnings;

    if (!index.refusal.isEmpty())
        warnings.append({Kind::Refused, Severity::Error, index.refusal, {}});

    QStringList hidden;
    for (const QString &name : index.classes) {
        if (name.startsWith(u'.'))
            hidden.append(name);
    }
    if (!hidden.isEmpty()) {
        warnings.append(
            {Kind::HiddenClass, Severity::Warning,
             QStringLiteral("Hidden folder%1 %2 became class%3: torchvision counts every "
                            "sub-folder, hidden or not, so the class indices shift. Delete or move "
                            "%4 (Jupyter leaves “.ipynb_checkpoints” behind).")
                 .arg(hidden.size() > 1 ? QStringLiteral("s") : QString(), quoted(hidden),
                      hidden.size() > 1 ? QStringLiteral("es") : QString(),
                      hidden.size() > 1 ? QStringLiteral("them") : QStringLiteral("it")),
             hidden});
    }

    // Numeric names sort as strings: "10" comes before "2".
    QStringList numeric;
    for (const QString &name : index.classes) {
        bool ok = false;
        name.toLongLong(&ok);
        if (ok)
            numeric.append(name);
    }
    if (numeric.size() >= 2) {
        QStringList byValue = numeric;
        std::sort(byValue.begin(), byValue.end(), [](const QString &a, const QString &b) {
            return a.toLongLong() < b.toLongLong();
        });
        if (byValue != numeric) {
            QStringList examples;
            for (int i = 0; i < numeric.size() && examples.size() < 3; ++i) {
                if (numeric[i] != byValue[i])
                    examples.append(QStringLiteral("“%1” has index %2")
                                        .arg(numeric[i])
                                        .arg(index.classIndex(numeric[i])));
            }
            warnings.append(
                {Kind::NumericOrder, Severity::Warning,
                 QStringLiteral("Numeric class names are sorted as text, not as numbers: %1. If "
                                "your labels mean the numbers, zero-pad the folder names "
                                "(“02”, “10”) or map the indices yourself.")
                     .arg(examples.join(QStringLiteral(", "))),
                 numeric});
        }
    }

    QStringList empty;
    for (int i = 0; i < index.classes.size(); ++i) {
        if (i < int(index.counts.size()) && index.counts[size_t(i)] == 0)
            empty.append(index.classes[i]);
    }
    if (!empty.isEmpty() && index.refusal.isEmpty()) {
        warnings.append(
            {Kind::EmptyClass, Severity::Warning,
             QStringLiteral("%1 class%2 without any image: %3. torchvision 0.14's "
                            "ImageFolder refuses such a folder (newer versions "
                            "accept it with allow_empty=True), and an empty class "
                            "still takes an output of the classifier.")
                 .arg(empty.size())
                 .arg(empty.size() > 1 ? QStringLiteral("es") : QString(), quoted(empty)),
             empty});
    }

    // Imbalance between the non-empty classes.
    int64_t smallest = -1, largest = 0;
    QString smallestName, largestName;
    for (int i = 0; i < index.classes.size() && i < int(index.counts.size()); ++i) {
        const int64_t n = index.counts[size_t(i)];
        if (n == 0)
            continue;
        if (smallest < 0 || n < smallest) {
            smallest = n;
            smallestName = index.classes[i];
        }
        if (n > largest) {
            largest = n;
            largestName = index.classes[i];
        }
    }
    if (smallest > 0 && double(largest) >= kImbalanceRatio * double(smallest)) {
        const QLocale locale;
        warnings.append(
            {Kind::Imbalance,
             Severity::Warning,
             QStringLiteral("Strong class imbalance: “%1” has %2 images, “%3” only %4 (%5×). "
                            "Accuracy will flatter the model; consider a weighted sampler or loss, "
                            "and watch per-class recall.")
                 .arg(largestName, locale.toString(largest), smallestName,
                      locale.toString(smallest))
                 .arg(double(largest) / double(smallest), 0, 'f', 1),
             {largestName, smallestName}});
    }

    for (const ScanIssue &issue : index.issues) {
        if (issue.kind == ScanIssue::Kind::SymlinkLoop)
            warnings.append({Kind::SymlinkLoop, Severity::Warning, issue.message, {}});
        else if (issue.kind == ScanIssue::Kind::UnreadableFolder)
            warnings.append({Kind::UnreadableFolder, Severity::Error, issue.message, {}});
    }
    return warnings;
}

QByteArray classToIdxJson(const ImageFolderIndex &index)
{
    JsonWriter json(2);
    json.beginObject();
    for (int i = 0; i < index.classes.size(); ++i) {
        const QByteArray name = index.classes[i].toUtf8();
        json.key(std::string_view(name.constData(), size_t(name.size()))).value(i);
    }
    json.endObject();
    return json.take() + '\n';
}

Status saveClassToIdx(const ImageFolderIndex &index, const QString &path)
{
    QSaveFile file(path);
    if (!file.open(QIODevice::WriteOnly)) {
        return Error{QStringLiteral("Cannot write “%1”: %2.").arg(path, file.errorString())};
    }
    file.write(classToIdxJson(index));
    if (!file.commit())
        return Error{QStringLiteral("Cannot write “%1”: %2.").arg(path, file.errorString())};
    return success();
}

} // namespace ifs

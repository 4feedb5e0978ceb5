#include "commands.h"

#include "base/jsonwriter.h"
#include "dataset/datasetlayout.h"
#include "dataset/healthcheck.h"
#include "dataset/imagefolder.h"

#include <QCommandLineParser>
#include <QFileInfo>
#include <QLocale>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <map>

namespace ifs::cli {

namespace {

std::atomic_bool g_interrupted{false};

extern "C" void onInterrupt(int)
{
    g_interrupted = true;
}

/// What scanning found about one split (or the plain root), worded as `scan` words it.
struct DatasetProblem
{
    QString split;
    DatasetWarning warning;
};

const char *warningKindKey(DatasetWarning::Kind kind)
{
    switch (kind) {
    case DatasetWarning::Kind::HiddenClass:
        return "hidden_class";
    case DatasetWarning::Kind::NumericOrder:
        return "numeric_order";
    case DatasetWarning::Kind::EmptyClass:
        return "empty_class";
    case DatasetWarning::Kind::Imbalance:
        return "imbalance";
    case DatasetWarning::Kind::SymlinkLoop:
        return "symlink_loop";
    case DatasetWarning::Kind::UnreadableFolder:
        return "unreadable_folder";
    case DatasetWarning::Kind::SplitMismatch:
        return "split_mismatch";
    case DatasetWarning::Kind::Refused:
        return "refused";
    }
    return "unknown";
}

const char *warningSeverityKey(DatasetWarning::Severity severity)
{
    switch (severity) {
    case DatasetWarning::Severity::Info:
        return "info";
    case DatasetWarning::Severity::Warning:
        return "warning";
    case DatasetWarning::Severity::Error:
        return "error";
    }
    return "unknown";
}

bool isRefusal(const DatasetProblem &problem)
{
    return problem.warning.kind == DatasetWarning::Kind::Refused;
}

bool hasDatasetErrors(const QList<DatasetProblem> &problems)
{
    return std::any_of(problems.cbegin(), problems.cend(), [](const DatasetProblem &p) {
        return p.warning.severity == DatasetWarning::Severity::Error;
    });
}

void writeProblemsJson(JsonWriter &json, const QList<DatasetProblem> &problems)
{
    json.key("accepted_by_torchvision")
        .value(std::none_of(problems.cbegin(), problems.cend(), isRefusal));
    json.key("dataset_warnings").beginArray();
    for (const DatasetProblem &problem : problems) {
        json.beginObject();
        json.key("kind").value(warningKindKey(problem.warning.kind));
        json.key("severity").value(warningSeverityKey(problem.warning.severity));
        json.key("split");
        if (problem.split.isEmpty())
            json.null();
        else
            json.value(problem.split);
        json.key("message").value(problem.warning.message);
        json.endObject();
    }
    json.endArray();
}

QByteArray reportJson(const QString &root, const QStringList &splits, const HealthReport &report,
                      const QList<DatasetProblem> &problems)
{
    JsonWriter json;
    json.beginObject();
    json.key("root").value(root);
    json.key("splits").beginArray();
    for (const QString &split : splits)
        json.value(split);
    json.endArray();
    json.key("files_checked").value(report.filesChecked);
    json.key("bytes_read").value(report.bytesRead);
    json.key("seconds").value(report.seconds);
    json.key("cancelled").value(report.cancelled);
    json.key("errors").value(report.errorCount());
    json.key("warnings").value(report.warningCount());
    writeProblemsJson(json, problems);
    json.key("findings").beginArray();
    for (const HealthFinding &finding : report.findings) {
        json.beginObject();
        json.key("kind").value(healthKindKey(finding.kind));
        json.key("severity").value(healthSeverityKey(finding.severity));
        json.key("split");
        if (finding.split.isEmpty())
            json.null();
        else
            json.value(finding.split);
        json.key("path").value(finding.relativePath);
        json.key("message").value(finding.message);
        json.key("duplicate_of");
        if (finding.duplicateOf.isEmpty())
            json.null();
        else
            json.value(finding.duplicateOf);
        if (finding.hashDistance >= 0)
            json.key("hash_distance").value(finding.hashDistance);
        json.endObject();
    }
    json.endArray();
    json.endObject();
    QByteArray out = json.take();
    out.append('\n');
    return out;
}

void printReport(const QString &root, const QStringList &splits, const HealthReport &report,
                 const QList<DatasetProblem> &problems)
{
    const QLocale locale;
    printOut(
        QStringLiteral("%1%2: %3 files checked in %4 s")
            .arg(root,
                 splits.isEmpty() ? QString() : QStringLiteral(" (%1)").arg(splits.join(u", ")))
            .arg(locale.toString(qlonglong(report.filesChecked)))
            .arg(report.seconds, 0, 'f', 1));
    const int errors = report.errorCount();
    const int warnings = report.warningCount();
    const int notes = int(report.findings.size()) - errors - warnings;
    printOut(QStringLiteral("  %1 %2, %3 %4, %5 %6")
                 .arg(errors)
                 .arg(errors == 1 ? QStringLiteral("error") : QStringLiteral("errors"))
                 .arg(warnings)
                 .arg(warnings == 1 ? QStringLiteral("warning") : QStringLiteral("warnings"))
                 .arg(notes)
                 .arg(notes == 1 ? QStringLiteral("note") : QStringLiteral("notes")));
    std::map<int, int> perKind;
    for (const HealthFinding &finding : report.findings)
        ++perKind[int(finding.kind)];
    for (const auto &[kind, count] : perKind) {
        printOut(QStringLiteral("  %1 %2")
                     .arg(QString::fromLatin1(healthKindKey(HealthFinding::Kind(kind))), -16)
                     .arg(count));
    }
    for (const HealthFinding &finding : report.findings) {
        printOut(QString::fromLatin1(healthSeverityKey(finding.severity)) + QStringLiteral(": ")
                 + finding.message);
    }
    // What `scan` says about the folders, in its words: warnings here, refusals on stderr.
    for (const DatasetProblem &problem : problems) {
        if (!isRefusal(problem))
            printOut(QStringLiteral("warning: ")
                     + (problem.split.isEmpty() ? QString() : problem.split + QStringLiteral(": "))
                     + problem.warning.message);
    }
    for (const DatasetProblem &problem : problems) {
        if (isRefusal(problem))
            printError(problem.warning.message);
    }
    if (report.findings.isEmpty() && report.filesChecked > 0 && !hasDatasetErrors(problems))
        printOut(QStringLiteral("All images load as torchvision would load them."));
}

} // namespace

int runCheck(const QStringList &args)
{
    QCommandLineParser parser;
    parser.setApplicationDescription(
        QStringLiteral("Decodes every image torchvision's ImageFolder would load from ROOT (or "
                       "from each of its train/val/test splits) and lists the files its loader "
                       "would fail on (errors) and the odd ones (warnings): truncated, empty, "
                       "not an image, huge, tiny, CMYK or 16-bit, misnamed, duplicated (and, with "
                       "--near-duplicates, resized, re-encoded or cropped copies). It also "
                       "says what `scan` refuses or warns about: folders it cannot read, symlink "
                       "loops, empty or hidden classes.\n"
                       "Exit status: 0 without errors, 1 with errors (a file torchvision's loader "
                       "fails on, a folder that cannot be read, or a dataset torchvision's "
                       "ImageFolder refuses), 2 for a bad command line."));
    const QCommandLineOption help = helpOption();
    const QCommandLineOption jsonOption(
        QStringLiteral("json"),
        QStringLiteral("Print one JSON object: root, files_checked, seconds, findings."));
    const QCommandLineOption minSideOption(
        QStringLiteral("min-side"),
        QStringLiteral("Report images with a side shorter than N pixels (default 8)."),
        QStringLiteral("N"), QStringLiteral("8"));
    const QCommandLineOption noDuplicatesOption(QStringLiteral("no-duplicates"),
                                                QStringLiteral("Do not look for duplicates."));
    parser.addOption(help);
    parser.addOption(jsonOption);
    parser.addOption(minSideOption);
    parser.addOption(noDuplicatesOption);
    const QCommandLineOption nearOption(
        QStringLiteral("near-duplicates"),
        QStringLiteral("Also look for near-duplicates by perceptual hash (pHash): resized, "
                       "re-encoded or cropped copies; across splits they are errors (leakage)."));
    const QCommandLineOption thresholdOption(
        QStringLiteral("near-threshold"),
        QStringLiteral("Near-duplicates within N bits of 64 (default %1); implies "
                       "--near-duplicates.")
            .arg(kNearDuplicateThreshold),
        QStringLiteral("N"), QString::number(kNearDuplicateThreshold));
    const QCommandLineOption differenceOption(
        QStringLiteral("near-difference"),
        QStringLiteral("Near-duplicates' 16 x 16 thumbnails at most L grey levels apart on average "
                       "(default %1); implies --near-duplicates.")
            .arg(kNearDuplicateMaxDifference),
        QStringLiteral("L"), QString::number(kNearDuplicateMaxDifference));
    parser.addOption(nearOption);
    parser.addOption(thresholdOption);
    parser.addOption(differenceOption);
    parser.addPositionalArgument(
        QStringLiteral("ROOT"),
        QStringLiteral("An ImageFolder root, or a folder with train/ and val/ (or test/) splits."));
    if (const int code = parseCommandLine(parser, args); code >= 0)
        return code;
    if (parser.positionalArguments().size() != 1) {
        printError(QStringLiteral("check needs exactly one ROOT folder. Try `ifstudio-cli check "
                                  "--help`."));
        return kExitUsage;
    }
    bool minSideOk = false;
    const int minSide = parser.value(minSideOption).toInt(&minSideOk);
    if (!minSideOk || minSide < 0) {
        printError(QStringLiteral("--min-side needs a number of pixels, not “%1”.")
                       .arg(parser.value(minSideOption)));
        return kExitUsage;
    }
    bool thresholdOk = false;
    const int threshold = parser.value(thresholdOption).toInt(&thresholdOk);
    if (!thresholdOk || threshold < 0 || threshold > 32) {
        printError(QStringLiteral("--near-threshold needs a number of bits from 0 to 32, not “%1”.")
                       .arg(parser.value(thresholdOption)));
        return kExitUsage;
    }
    bool differenceOk = false;
    const double difference = parser.value(differenceOption).toDouble(&differenceOk);
    if (!differenceOk || difference < 0 || difference > 255) {
        printError(QStringLiteral("--near-difference needs grey levels from 0 to 255, not “%1”.")
                       .arg(parser.value(differenceOption)));
        return kExitUsage;
    }
    const QString root = parser.positionalArguments().constFirst();
    if (!QFileInfo(root).isDir()) {
        printError(QStringLiteral("“%1” is not a folder.").arg(root));
        return kExitFailure;
    }

    const DatasetLayout layout = detectLayout(root);
    ScanOptions scanOptions; // torchvision 0.14's rules: an empty class is refused
    scanOptions.threads = requestedThreads();
    const Result<DatasetScan> scanned = scanDataset(layout, scanOptions);
    if (!scanned) {
        printError(scanned.errorMessage());
        return kExitFailure;
    }
    QList<HealthTarget> targets;
    QList<DatasetProblem> problems;
    for (const QString &split : scanned->splits) {
        const IndexPtr index = scanned->index(split);
        // The images of a refused split are still checked: the index goes as far as it can.
        for (const DatasetWarning &warning : analyseDataset(*index))
            problems.append({split, warning});
        targets.append({split, index.get()});
    }

    HealthOptions options;
    options.threads = requestedThreads();
    options.minSide = minSide;
    options.findDuplicates = !parser.isSet(noDuplicatesOption);
    options.findNearDuplicates = parser.isSet(nearOption) || parser.isSet(thresholdOption)
        || parser.isSet(differenceOption);
    options.nearDuplicateThreshold = threshold;
    options.nearDuplicateMaxDifference = difference;

    g_interrupted = false;
    const auto previousHandler = std::signal(SIGINT, onInterrupt);
    ProgressLine progress(QStringLiteral("Checking"));
    const HealthReport report = checkHealth(
        targets, options, [&](int64_t done, int64_t total) { progress.update(done, total); },
        &g_interrupted);
    progress.finish();
    std::signal(SIGINT, previousHandler);

    const QString shownRoot = layout.root.isEmpty() ? root : layout.root;
    const QStringList shownSplits = layout.hasSplits() ? layout.splits : QStringList();
    if (parser.isSet(jsonOption)) {
        writeOut(reportJson(shownRoot, shownSplits, report, problems));
        for (const DatasetProblem &problem : problems) {
            if (isRefusal(problem))
                printError(problem.warning.message);
        }
    } else {
        printReport(shownRoot, shownSplits, report, problems);
    }
    if (report.cancelled) {
        printError(QStringLiteral("check interrupted after %1 files.").arg(report.filesChecked));
        return kExitCancelled;
    }
    return report.errorCount() > 0 || hasDatasetErrors(problems) ? kExitFailure : kExitOk;
}

} // namespace ifs::cli

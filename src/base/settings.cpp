#include "base/settings.h"

#include <QCryptographicHash>
#include <QDir>
#include <QJsonDocument>
#include <QSettings>
#include <QStandardPaths>

namespace ifs {

namespace {
const QString kRecentDatasets = QStringLiteral("datasets/recent");
const QString kRecentCheckpoints = QStringLiteral("checkpoints/recent");
const QString kLastCheckpointFolder = QStringLiteral("checkpoints/lastFolder");
const QString kGeometry = QStringLiteral("window/geometry");
const QString kState = QStringLiteral("window/state");
const QString kSplitterPrefix = QStringLiteral("window/splitter/");
const QString kThreads = QStringLiteral("compute/threads");
const QString kSampleData = QStringLiteral("datasets/sampleFolder");
const QString kLastOpen = QStringLiteral("datasets/lastOpenFolder");
const QString kThumbnailSize = QStringLiteral("datasets/thumbnailSize");
const QString kPipelinesPrefix = QStringLiteral("transforms/pipelines/");
const QString kPreviewDraws = QStringLiteral("transforms/previewDraws");
const QString kPreviewSeed = QStringLiteral("transforms/previewSeed");
const QString kTrainingForm = QStringLiteral("training/form");

/// A dataset root as one QSettings key (paths hold '/', which QSettings reads as groups).
QString pipelineKey(const QString &datasetRoot)
{
    const QByteArray clean = QDir::cleanPath(datasetRoot).toUtf8();
    return kPipelinesPrefix
        + QString::fromLatin1(QCryptographicHash::hash(clean, QCryptographicHash::Sha1).toHex())
        + u'/';
}
} // namespace

Settings::Settings()
    : m_settings(std::make_unique<QSettings>())
{ }

Settings::~Settings() = default;

QStringList Settings::recentDatasets() const
{
    return m_settings->value(kRecentDatasets).toStringList();
}

void Settings::addRecentDataset(const QString &path)
{
    const QString clean = QDir::cleanPath(path);
    QStringList recent = recentDatasets();
    recent.removeAll(clean);
    recent.prepend(clean);
    while (recent.size() > kMaxRecent)
        recent.removeLast();
    m_settings->setValue(kRecentDatasets, recent);
}

void Settings::removeRecentDataset(const QString &path)
{
    QStringList recent = recentDatasets();
    recent.removeAll(QDir::cleanPath(path));
    m_settings->setValue(kRecentDatasets, recent);
}

QStringList Settings::recentCheckpoints() const
{
    return m_settings->value(kRecentCheckpoints).toStringList();
}

void Settings::addRecentCheckpoint(const QString &path)
{
    const QString clean = QDir::cleanPath(path);
    QStringList recent = recentCheckpoints();
    recent.removeAll(clean);
    recent.prepend(clean);
    while (recent.size() > kMaxRecent)
        recent.removeLast();
    m_settings->setValue(kRecentCheckpoints, recent);
}

void Settings::removeRecentCheckpoint(const QString &path)
{
    QStringList recent = recentCheckpoints();
    recent.removeAll(QDir::cleanPath(path));
    m_settings->setValue(kRecentCheckpoints, recent);
}

QString Settings::lastCheckpointFolder() const
{
    return m_settings->value(kLastCheckpointFolder, QDir::homePath()).toString();
}

void Settings::setLastCheckpointFolder(const QString &path)
{
    m_settings->setValue(kLastCheckpointFolder, path);
}

QByteArray Settings::windowGeometry() const
{
    return m_settings->value(kGeometry).toByteArray();
}

void Settings::setWindowGeometry(const QByteArray &geometry)
{
    m_settings->setValue(kGeometry, geometry);
}

QByteArray Settings::windowState() const
{
    return m_settings->value(kState).toByteArray();
}

void Settings::setWindowState(const QByteArray &state)
{
    m_settings->setValue(kState, state);
}

QByteArray Settings::splitterState(const QString &name) const
{
    return m_settings->value(kSplitterPrefix + name).toByteArray();
}

void Settings::setSplitterState(const QString &name, const QByteArray &state)
{
    m_settings->setValue(kSplitterPrefix + name, state);
}

int Settings::computeThreads() const
{
    return qMax(0, m_settings->value(kThreads, 0).toInt());
}

void Settings::setComputeThreads(int threads)
{
    m_settings->setValue(kThreads, qMax(0, threads));
}

QString Settings::sampleDataFolder() const
{
    // The same folder installer/setup.sh exports to, so the GUI finds that export.
    const QString fallback = QStandardPaths::writableLocation(QStandardPaths::GenericDataLocation)
        + QStringLiteral("/ImageFolderStudio/fashion-mnist");
    return m_settings->value(kSampleData, fallback).toString();
}

void Settings::setSampleDataFolder(const QString &path)
{
    m_settings->setValue(kSampleData, path);
}

QString Settings::lastOpenFolder() const
{
    return m_settings->value(kLastOpen, QDir::homePath()).toString();
}

void Settings::setLastOpenFolder(const QString &path)
{
    m_settings->setValue(kLastOpen, path);
}

int Settings::thumbnailSize() const
{
    return qBound(48, m_settings->value(kThumbnailSize, 112).toInt(), 320);
}

void Settings::setThumbnailSize(int pixels)
{
    m_settings->setValue(kThumbnailSize, qBound(48, pixels, 320));
}

Settings::PipelineSources Settings::transformPipelines(const QString &datasetRoot) const
{
    const QString key = pipelineKey(datasetRoot);
    return {m_settings->value(key + QStringLiteral("train")).toString(),
            m_settings->value(key + QStringLiteral("val")).toString()};
}

void Settings::setTransformPipelines(const QString &datasetRoot, const PipelineSources &sources)
{
    const QString key = pipelineKey(datasetRoot);
    m_settings->setValue(key + QStringLiteral("root"), QDir::cleanPath(datasetRoot));
    m_settings->setValue(key + QStringLiteral("train"), sources.train);
    m_settings->setValue(key + QStringLiteral("val"), sources.val);
}

void Settings::removeTransformPipelines(const QString &datasetRoot)
{
    m_settings->remove(pipelineKey(datasetRoot).chopped(1));
}

int Settings::previewDraws() const
{
    return qBound(1, m_settings->value(kPreviewDraws, 8).toInt(), 32);
}

void Settings::setPreviewDraws(int draws)
{
    m_settings->setValue(kPreviewDraws, qBound(1, draws, 32));
}

QJsonObject Settings::trainingForm() const
{
    return QJsonDocument::fromJson(m_settings->value(kTrainingForm).toByteArray()).object();
}

void Settings::setTrainingForm(const QJsonObject &form)
{
    m_settings->setValue(kTrainingForm, QJsonDocument(form).toJson(QJsonDocument::Compact));
}

quint64 Settings::previewSeed() const
{
    return m_settings->value(kPreviewSeed, 0).toULongLong();
}

void Settings::setPreviewSeed(quint64 seed)
{
    m_settings->setValue(kPreviewSeed, seed);
}

} // namespace ifs

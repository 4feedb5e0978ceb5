#pragma once

#include <QByteArray>
#include <QJsonObject>
#include <QString>
#include <QStringList>

#include <memory>

class QSettings;

namespace ifs {

/// Typed access to the user's settings (QSettings underneath). Widgets never build a QSettings
/// themselves: they go through this facade, so keys and defaults live in one place.
class Settings
{
public:
    Settings();
    ~Settings();

    static constexpr int kMaxRecent = 10;

    QStringList recentDatasets() const;
    void addRecentDataset(const QString &path); ///< moves it to the front, keeps kMaxRecent
    void removeRecentDataset(const QString &path);

    /// Checkpoint files opened lately, most recent first (at most kMaxRecent).
    QStringList recentCheckpoints() const;
    void addRecentCheckpoint(const QString &path); ///< moves it to the front, keeps kMaxRecent
    void removeRecentCheckpoint(const QString &path);
    /// The folder of the last checkpoint opened or saved (the file dialogs start there).
    QString lastCheckpointFolder() const;
    void setLastCheckpointFolder(const QString &path);

    QByteArray windowGeometry() const;
    void setWindowGeometry(const QByteArray &geometry);
    QByteArray windowState() const;
    void setWindowState(const QByteArray &state);
    QByteArray splitterState(const QString &name) const;
    void setSplitterState(const QString &name, const QByteArray &state);

    int computeThreads() const; ///< 0 = all cores
    void setComputeThreads(int threads);

    QString sampleDataFolder() const; ///< where "Open sample dataset" exports to
    void setSampleDataFolder(const QString &path);

    QString lastOpenFolder() const;
    void setLastOpenFolder(const QString &path);

    int thumbnailSize() const;
    void setThumbnailSize(int pixels);

    /// The Python source of the Train and Val transform pipelines saved for a dataset root (as the
    /// Transforms workspace's code view holds it); both empty when nothing is saved for it.
    struct PipelineSources
    {
        QString train;
        QString val;
        bool isEmpty() const { return train.isEmpty() && val.isEmpty(); }
    };
    PipelineSources transformPipelines(const QString &datasetRoot) const;
    void setTransformPipelines(const QString &datasetRoot, const PipelineSources &sources);
    void removeTransformPipelines(const QString &datasetRoot);

    /// The Training workspace's last settings (TrainConfig::toJson() without the dataset, run
    /// folder and resume); empty before the first run.
    QJsonObject trainingForm() const;
    void setTrainingForm(const QJsonObject &form);

    int previewDraws() const; ///< random draws of the train pipeline in the preview grid
    void setPreviewDraws(int draws);
    quint64 previewSeed() const; ///< the preview's torch.manual_seed
    void setPreviewSeed(quint64 seed);

private:
    std::unique_ptr<QSettings> m_settings;
};

} // namespace ifs

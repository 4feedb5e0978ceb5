#include "common/icons.h"

#include <QFile>

namespace ifs {

QIcon themedIcon(const QString &name)
{
    const QString bundled = QStringLiteral(":/icons/") + name + QStringLiteral(".svg");
    return QIcon::fromTheme(name, QFile::exists(bundled) ? QIcon(bundled) : QIcon());
}

} // namespace ifs

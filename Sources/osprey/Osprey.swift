import OspreyCLI

@main
enum Osprey {
    static func main() async {
        await OspreyCommand.main()
    }
}
